/* The live log viewer: follows the shared log stream with EventSource.

   A dropped connection is resumed by the browser itself, which sends the last event id it saw
   (Last-Event-ID) so the server can replay what was missed; lines are de-duplicated by their
   event id, so a replay never shows a line twice. Pausing keeps receiving into a buffer, so
   nothing is lost while paused. */
(function () {
  "use strict";

  const MAX_LINES = 2000;
  const MAX_SEEN = 5000;
  const LEVELS = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };
  const SHOWN_FIRST = ["test_id", "variant_id", "request_id", "user", "service"];
  const SKIPPED = new Set(["timestamp", "level", "message"]);

  let source = null;
  let retryTimer = null;
  let retryDelay = 1000;
  let paused = false;
  let buffer = [];
  let lastId = null;
  let seen = new Set();
  let seenOrder = [];
  let lines = 0;

  const $ = function (id) { return document.getElementById(id); };

  /* Redis stream ids are "<milliseconds>-<sequence>"; later lines have larger ids. */
  function compareIds(a, b) {
    const [am, as] = a.split("-").map(Number);
    const [bm, bs] = b.split("-").map(Number);
    return am !== bm ? am - bm : (as || 0) - (bs || 0);
  }

  function remember(id) {
    seen.add(id);
    seenOrder.push(id);
    if (seenOrder.length > MAX_SEEN) seen.delete(seenOrder.shift());
  }

  function setStatus(state, text) {
    const node = $("scout-log-status");
    node.dataset.state = state;
    node.textContent = text;
  }

  function filters() {
    return { level: $("log-level").value, test_id: $("log-test").value };
  }

  function streamUrl() {
    const params = new URLSearchParams();
    const current = filters();
    params.set("level", current.level);
    if (current.test_id) params.set("test_id", current.test_id);
    /* A new connection (after a refused one) resumes where the last one stopped; the browser's
       own reconnects send Last-Event-ID instead. */
    if (lastId) params.set("last_event_id", lastId);
    return $("scout-logs-page").dataset.streamUrl + "?" + params.toString();
  }

  function matches(entry) {
    const current = filters();
    const level = LEVELS[String(entry.level || "").toUpperCase()] || 0;
    if (level < (LEVELS[current.level] || 0)) return false;
    if (current.test_id && String(entry.test_id || "") !== current.test_id) return false;
    return true;
  }

  function timeOf(entry) {
    const date = new Date(entry.timestamp);
    if (isNaN(date)) return String(entry.timestamp || "");
    return date.toLocaleTimeString([], { hour12: false }) + "." +
      String(date.getMilliseconds()).padStart(3, "0");
  }

  function fieldsOf(entry) {
    const keys = SHOWN_FIRST.filter(function (k) { return entry[k] !== undefined && entry[k] !== null; });
    for (const key of Object.keys(entry)) {
      if (!SKIPPED.has(key) && !keys.includes(key) && entry[key] !== null) keys.push(key);
    }
    return keys.map(function (key) {
      const value = typeof entry[key] === "object" ? JSON.stringify(entry[key]) : entry[key];
      return key + "=" + value;
    }).join(" ");
  }

  function render(id, entry) {
    const row = document.createElement("div");
    const level = String(entry.level || "INFO").toUpperCase();
    row.className = "scout-log scout-log-" + level;
    row.dataset.id = id || "";
    if (entry.test_id) row.dataset.testId = entry.test_id;
    const time = document.createElement("span");
    time.className = "scout-log-time";
    time.textContent = timeOf(entry);
    const badge = document.createElement("span");
    badge.className = "scout-log-level";
    badge.textContent = level;
    const message = document.createElement("span");
    message.className = "scout-log-message";
    message.textContent = String(entry.message || "") + " ";
    const fields = document.createElement("span");
    fields.className = "scout-log-fields";
    fields.textContent = fieldsOf(entry);
    message.appendChild(fields);
    row.append(time, badge, message);
    return row;
  }

  function append(rows) {
    if (!rows.length) return;
    const box = $("scout-logs");
    const empty = $("log-empty");
    if (empty) empty.remove();
    const fragment = document.createDocumentFragment();
    for (const row of rows) fragment.appendChild(row);
    box.appendChild(fragment);
    lines += rows.length;
    while (lines > MAX_LINES && box.firstChild) {
      box.removeChild(box.firstChild);
      lines -= 1;
    }
    $("log-count").textContent = lines + (lines === 1 ? " line" : " lines");
    if ($("log-autoscroll").checked) box.scrollTop = box.scrollHeight;
  }

  function receive(event) {
    const id = event.lastEventId;
    if (id) {
      if (seen.has(id) || (lastId && compareIds(id, lastId) <= 0)) return;
      remember(id);
      lastId = id;
    }
    let entry;
    try {
      entry = JSON.parse(event.data);
    } catch (error) {
      entry = { level: "INFO", message: String(event.data) };
    }
    if (!matches(entry)) return;
    const row = render(id, entry);
    if (paused) {
      buffer.push(row);
      setStatus("paused", "Paused (" + buffer.length + " new)");
    } else {
      append([row]);
    }
  }

  /* EventSource does not expose the status of a refused connection; ask once, and stop
     reading as soon as the headers are in. */
  function explain(retry) {
    const controller = new AbortController();
    fetch(streamUrl(), { credentials: "same-origin", signal: controller.signal })
      .then(function (response) {
        controller.abort();
        if (response.status === 404) {
          setStatus("failed", "This server has no log stream (HTTP 404)" + retry);
        } else if (response.status === 401 || response.status === 403) {
          setStatus("failed", "Not allowed to read the logs (HTTP " + response.status + ")" + retry);
        } else if (!response.ok) {
          setStatus("failed", "Log stream unavailable (HTTP " + response.status + ")" + retry);
        }
      })
      .catch(function () { /* offline: the status already says disconnected */ });
  }

  function connect() {
    window.clearTimeout(retryTimer);
    if (source) source.close();
    setStatus("connecting", "Connecting…");
    source = new EventSource(streamUrl(), { withCredentials: true });
    source.onopen = function () {
      retryDelay = 1000;
      if (!paused) setStatus("live", "Live");
    };
    source.onmessage = receive;
    source.onerror = function () {
      if (source.readyState === EventSource.CONNECTING) {
        /* The browser reconnects by itself and sends Last-Event-ID. */
        setStatus("reconnecting", "Reconnecting…");
        return;
      }
      /* Refused (an HTTP error): say why, and try again later with a new connection. */
      const delay = retryDelay;
      retryTimer = window.setTimeout(connect, delay);
      retryDelay = Math.min(retryDelay * 2, 30000);
      const retry = "; retrying in " + Math.round(delay / 1000) + " s";
      setStatus("failed", "Disconnected" + retry);
      explain(retry);
    };
  }

  function restart() {
    $("scout-logs").innerHTML = "";
    lines = 0;
    buffer = [];
    /* lastId is kept: the new connection resumes after the last line seen, so nothing logged
       while it connects is lost; the new filters apply from there on. */
    seen = new Set();
    seenOrder = [];
    $("log-count").textContent = "0 lines";
    const current = filters();
    const params = new URLSearchParams({ level: current.level });
    if (current.test_id) params.set("test_id", current.test_id);
    window.history.replaceState(null, "", "?" + params.toString());
    connect();
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!$("scout-logs-page")) return;
    $("log-level").addEventListener("change", restart);
    $("log-test").addEventListener("change", restart);
    $("log-clear").addEventListener("click", function () {
      $("scout-logs").innerHTML = "";
      lines = 0;
      $("log-count").textContent = "0 lines";
    });
    $("log-pause").addEventListener("click", function () {
      paused = !paused;
      this.textContent = paused ? "Resume" : "Pause";
      if (paused) {
        setStatus("paused", "Paused");
      } else {
        append(buffer);
        buffer = [];
        setStatus(source && source.readyState === EventSource.OPEN ? "live" : "connecting",
          source && source.readyState === EventSource.OPEN ? "Live" : "Connecting…");
      }
    });
    $("scout-logs").addEventListener("scroll", function () {
      const box = this;
      const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
      $("log-autoscroll").checked = atBottom;
    });
    connect();
  });
})();
