// One WAMP peer per page: Autobahn|JS, driven from driver.js through window.wampTest.
//
// Every function returns plain JSON-able data (or a promise of it), so that
// Playwright's page.evaluate can hand it back to the test. Errors from the router
// come back as {error, args, kwargs} values rather than rejections, so the test
// can assert on them; only misuse and timeouts reject.

"use strict";

(function () {
  const state = {
    connection: null,
    session: null,
    closed: null, // {reason, message} once the connection closed
    events: new Map(), // topic -> [{args, kwargs, publisher, topic}]
    invocations: [], // [{procedure, args, kwargs, caller}]
    waiters: [], // [{check, resolve}] woken on each event
  };

  function plainError(err) {
    if (err instanceof autobahn.Error) {
      return { error: err.error, args: err.args || [], kwargs: err.kwargs || {} };
    }
    return { error: "javascript", args: [String(err)], kwargs: {} };
  }

  function plainResult(value) {
    if (value instanceof autobahn.Result) {
      return { args: value.args || [], kwargs: value.kwargs || {} };
    }
    if (value === undefined || value === null) {
      return { args: [], kwargs: {} };
    }
    return { args: [value], kwargs: {} };
  }

  function serializerFor(name) {
    const classes = {
      json: autobahn.serializer.JSONSerializer,
      msgpack: autobahn.serializer.MsgpackSerializer,
      cbor: autobahn.serializer.CBORSerializer,
    };
    const cls = classes[name];
    if (!cls) {
      throw new Error("no such serializer in this Autobahn|JS build: " + name);
    }
    return new cls();
  }

  function requireSession() {
    if (!state.session || !state.session.isOpen) {
      throw new Error("no open WAMP session on this page");
    }
    return state.session;
  }

  function withTimeout(promise, ms, what) {
    let timer = null;
    const expired = new Promise(function (_, reject) {
      timer = setTimeout(function () {
        reject(new Error(what + ": no answer within " + ms + " ms"));
      }, ms);
    });
    return Promise.race([promise, expired]).finally(function () {
      clearTimeout(timer);
    });
  }

  function wakeWaiters() {
    state.waiters = state.waiters.filter(function (waiter) {
      if (waiter.check()) {
        waiter.resolve();
        return false;
      }
      return true;
    });
  }

  // What a procedure registered by this page does with a call.
  const behaviours = {
    // the sum of the positional arguments
    add: function (args) {
      return args.reduce(function (a, b) {
        return a + b;
      }, 0);
    },
    // the arguments, positional reversed, keyword as they are
    echo: function (args, kwargs) {
      return new autobahn.Result(args.slice().reverse(), kwargs);
    },
    // who called (the caller's session ID when disclosed, else null) and what
    whoami: function (args, kwargs, details) {
      return new autobahn.Result([], {
        caller: details.caller === undefined ? null : details.caller,
        procedure: details.procedure === undefined ? null : details.procedure,
      });
    },
    // an application error carrying the arguments
    fail: function (args, kwargs) {
      throw new autobahn.Error("com.example.browser.failed", args, kwargs);
    },
  };

  window.wampTest = {
    autobahnVersion: autobahn.version,

    // Open a session: transport "websocket" or "longpoll". Resolves with the
    // session ID and the transport Autobahn|JS reports; rejects if the
    // connection closes before joining.
    open: function (url, transport, realm, serializer, timeoutMs) {
      if (state.connection) {
        throw new Error("this page already opened a connection");
      }
      const transportOptions = { type: transport, url: url };
      if (serializer) {
        transportOptions.serializers = [serializerFor(serializer)];
      }
      const joined = new Promise(function (resolve, reject) {
        const connection = new autobahn.Connection({
          realm: realm,
          transports: [transportOptions],
          max_retries: 0,
          retry_if_unreachable: false,
          use_es6_promises: true,
        });
        connection.onopen = function (session, details) {
          state.session = session;
          document.getElementById("status").textContent = "open";
          resolve({
            session: session.id,
            transport: connection.transport.info.type,
            protocol: connection.transport.info.protocol,
            authrole: details.authrole === undefined ? null : details.authrole,
            roles: Object.keys(details.roles || {}).sort(),
          });
        };
        connection.onclose = function (reason, details) {
          state.closed = { reason: reason, message: details.message || details.reason || null };
          state.session = null;
          document.getElementById("status").textContent = "closed: " + reason;
          reject(new Error("connection closed before joining: " + reason + " " +
            JSON.stringify(details)));
          return true; // no reconnection
        };
        state.connection = connection;
        connection.open();
      });
      return withTimeout(joined, timeoutMs, "open " + url);
    },

    register: async function (procedure, behaviour, options) {
      const fn = behaviours[behaviour];
      if (!fn) {
        throw new Error("no such behaviour: " + behaviour);
      }
      const session = requireSession();
      const endpoint = function (args, kwargs, details) {
        args = args || [];
        kwargs = kwargs || {};
        state.invocations.push({
          procedure: details.procedure === undefined ? procedure : details.procedure,
          args: args,
          kwargs: kwargs,
          caller: details.caller === undefined ? null : details.caller,
        });
        return fn(args, kwargs, details);
      };
      const registration = await session.register(procedure, endpoint, options || {});
      return registration.id;
    },

    // Call: {args, kwargs} on success, {error, args, kwargs} on an error answer.
    call: async function (procedure, args, kwargs, options, timeoutMs) {
      const session = requireSession();
      try {
        const result = await withTimeout(
          Promise.resolve(session.call(procedure, args || [], kwargs || {}, options || {})),
          timeoutMs, "call " + procedure);
        return plainResult(result);
      } catch (err) {
        if (err instanceof autobahn.Error) {
          return plainError(err);
        }
        throw err;
      }
    },

    subscribe: async function (topic, options) {
      const session = requireSession();
      const received = [];
      state.events.set(topic, received);
      const handler = function (args, kwargs, details) {
        received.push({
          args: args || [],
          kwargs: kwargs || {},
          publisher: details.publisher === undefined ? null : details.publisher,
          topic: details.topic === undefined ? topic : details.topic,
        });
        wakeWaiters();
      };
      const subscription = await session.subscribe(topic, handler, options || {});
      return subscription.id;
    },

    // Publish with acknowledgement: the publication ID, or {error, ...}.
    publish: async function (topic, args, kwargs, options, timeoutMs) {
      const session = requireSession();
      const opts = Object.assign({}, options || {}, { acknowledge: true });
      try {
        const publication = await withTimeout(
          Promise.resolve(session.publish(topic, args || [], kwargs || {}, opts)),
          timeoutMs, "publish " + topic);
        return { publication: publication.id };
      } catch (err) {
        if (err instanceof autobahn.Error) {
          return plainError(err);
        }
        throw err;
      }
    },

    // The events received on topic once there are at least count of them;
    // rejects after timeoutMs.
    events: function (topic, count, timeoutMs) {
      const received = state.events.get(topic);
      if (!received) {
        throw new Error("not subscribed to " + topic);
      }
      const enough = function () {
        return received.length >= count;
      };
      if (enough()) {
        return received.slice();
      }
      const arrived = new Promise(function (resolve) {
        state.waiters.push({ check: enough, resolve: resolve });
      });
      return withTimeout(arrived, timeoutMs, count + " events on " + topic).then(function () {
        return received.slice();
      });
    },

    invocations: function () {
      return state.invocations.slice();
    },

    // Leave and close; resolves with the close reason Autobahn|JS reports.
    close: function (timeoutMs) {
      const connection = state.connection;
      if (!connection) {
        throw new Error("nothing to close");
      }
      if (state.closed) {
        return state.closed;
      }
      const closed = new Promise(function (resolve) {
        connection.onclose = function (reason, details) {
          state.closed = { reason: reason, message: details.message || details.reason || null };
          state.session = null;
          resolve(state.closed);
          return true;
        };
      });
      connection.close("wamp.close.normal", "bye");
      return withTimeout(closed, timeoutMs, "close");
    },
  };

  document.getElementById("status").textContent = "ready";
})();
