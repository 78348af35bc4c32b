#!/usr/bin/env node
// Drives headless Chromium for tests/browser/test_browser.py.
//
// Serves index.html, wamp_page.js and Autobahn|JS (node_modules/autobahn-browser)
// on 127.0.0.1 (a free port), launches Chromium through playwright-core and then
// answers requests, one JSON object per line on stdin, with one JSON line each on
// stdout:
//
//   {"id": 1, "op": "page", "page": "a"}             a new browser context + page
//   {"id": 2, "op": "eval", "page": "a", "fn": "call", "args": [...]}
//                                                   window.wampTest[fn](...args)
//   {"id": 3, "op": "quit"}                          close everything and exit
//
// Answers are {"id", "ok": true, "value"} or {"id", "ok": false, "error"}. The
// first line written is {"ready": true, "chromium": VERSION, "origin": URL}.
// Diagnostics (page console, page errors) go to stderr. End of stdin means quit.
//
// With --proxy-longpoll URL, requests under /lp on the page's origin are passed
// on to the router's long-poll base URL, so that a page can use long-poll from
// its own origin (as behind a reverse proxy that serves both).
//
// Environment: CHROMIUM (default /usr/bin/chromium).

"use strict";

const fs = require("fs");
const http = require("http");
const path = require("path");
const readline = require("readline");

const HERE = __dirname;
const { chromium } = require(path.join(HERE, "node_modules", "playwright-core"));

const FILES = {
  "/": [path.join(HERE, "index.html"), "text/html; charset=utf-8"],
  "/index.html": [path.join(HERE, "index.html"), "text/html; charset=utf-8"],
  "/wamp_page.js": [path.join(HERE, "wamp_page.js"), "text/javascript; charset=utf-8"],
  "/autobahn.min.js": [
    path.join(HERE, "node_modules", "autobahn-browser", "autobahn.min.js"),
    "text/javascript; charset=utf-8",
  ],
};

const PROXY_PREFIX = "/lp";
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

const LAUNCH_TIMEOUT_MS = 60000;
const NAVIGATION_TIMEOUT_MS = 30000;

function log(...parts) {
  process.stderr.write("driver: " + parts.join(" ") + "\n");
}

function answer(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

function parseArgs(argv) {
  const options = { proxyLongpoll: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--proxy-longpoll" && i + 1 < argv.length) {
      options.proxyLongpoll = new URL(argv[++i]);
    } else {
      throw new Error("unknown argument " + JSON.stringify(argv[i]));
    }
  }
  return options;
}

function endToEnd(headers) {
  const kept = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.has(name.toLowerCase())) {
      kept[name] = value;
    }
  }
  return kept;
}

// Pass one request under PROXY_PREFIX on to the router's long-poll base.
function proxy(request, response, url, target) {
  const headers = endToEnd(request.headers);
  headers.host = target.host;
  const upstream = http.request(
    {
      host: target.hostname,
      port: target.port,
      method: request.method,
      path: target.pathname.replace(/\/$/, "") + url.pathname.slice(PROXY_PREFIX.length) +
        url.search,
      headers: headers,
    },
    function (answer) {
      response.writeHead(answer.statusCode, endToEnd(answer.headers));
      answer.pipe(response);
    },
  );
  upstream.on("error", function (err) {
    log("proxy:", request.method, url.pathname, String(err));
    if (!response.headersSent) {
      response.writeHead(502, { "content-type": "text/plain" });
    }
    response.end();
  });
  // The browser gave up on the request (e.g. the page closed): so does the proxy.
  response.on("close", function () {
    if (!response.writableFinished) {
      upstream.destroy();
    }
  });
  request.pipe(upstream);
}

function serveStatic(options) {
  const server = http.createServer(function (request, response) {
    const url = new URL(request.url, "http://127.0.0.1");
    if (
      options.proxyLongpoll &&
      (url.pathname === PROXY_PREFIX || url.pathname.startsWith(PROXY_PREFIX + "/"))
    ) {
      proxy(request, response, url, options.proxyLongpoll);
      return;
    }
    const entry = request.method === "GET" ? FILES[url.pathname] : undefined;
    if (!entry) {
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("not found\n");
      return;
    }
    fs.readFile(entry[0], function (err, data) {
      if (err) {
        response.writeHead(500, { "content-type": "text/plain" });
        response.end(String(err) + "\n");
        return;
      }
      response.writeHead(200, { "content-type": entry[1], "cache-control": "no-store" });
      response.end(data);
    });
  });
  return new Promise(function (resolve, reject) {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", function () {
      resolve(server);
    });
  });
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const server = await serveStatic(options);
  const origin = "http://127.0.0.1:" + server.address().port;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout: LAUNCH_TIMEOUT_MS,
    // Playwright gives the browser a fresh profile directory of its own (under
    // TMPDIR) and removes it on close.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const pages = new Map();
  let closing = null;

  function shutdown() {
    if (closing === null) {
      closing = (async function () {
        for (const page of pages.values()) {
          await page.context().close().catch(function () {});
        }
        await browser.close().catch(function () {});
        await new Promise(function (resolve) {
          server.close(resolve);
          server.closeAllConnections();
        });
      })();
    }
    return closing;
  }

  async function openPage(name) {
    if (pages.has(name)) {
      throw new Error("page " + name + " exists");
    }
    // A context of its own: nothing shared with the other pages.
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(NAVIGATION_TIMEOUT_MS);
    page.on("console", function (message) {
      log("[" + name + " console." + message.type() + "]", message.text());
    });
    page.on("pageerror", function (error) {
      log("[" + name + " pageerror]", String(error));
    });
    pages.set(name, page);
    await page.goto(origin + "/index.html", { timeout: NAVIGATION_TIMEOUT_MS });
    await page.waitForFunction(
      function () {
        return window.wampTest !== undefined;
      },
      null,
      { timeout: NAVIGATION_TIMEOUT_MS },
    );
    return page.evaluate(function () {
      return { autobahn: window.wampTest.autobahnVersion, userAgent: navigator.userAgent };
    });
  }

  async function handle(request) {
    switch (request.op) {
      case "page":
        return openPage(request.page);
      case "eval": {
        const page = pages.get(request.page);
        if (!page) {
          throw new Error("no page " + request.page);
        }
        return page.evaluate(
          function ([fn, args]) {
            return window.wampTest[fn](...args);
          },
          [request.fn, request.args || []],
        );
      }
      case "quit":
        await shutdown();
        return null;
      default:
        throw new Error("unknown op " + JSON.stringify(request.op));
    }
  }

  answer({ ready: true, chromium: browser.version(), origin: origin });

  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) {
      continue;
    }
    let request;
    try {
      request = JSON.parse(line);
    } catch (err) {
      answer({ id: null, ok: false, error: "bad request: " + String(err) });
      continue;
    }
    try {
      const value = await handle(request);
      answer({ id: request.id, ok: true, value: value === undefined ? null : value });
    } catch (err) {
      answer({ id: request.id, ok: false, error: String(err && err.message ? err.message : err) });
    }
    if (request.op === "quit") {
      break;
    }
  }
  await shutdown();
}

main().then(
  function () {
    process.exit(0);
  },
  function (err) {
    log("fatal:", err && err.stack ? err.stack : String(err));
    process.exit(1);
  },
);
