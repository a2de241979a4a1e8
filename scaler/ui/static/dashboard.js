/* Scaler dashboard: renders the status a scheduler publishes (docs/monitoring.md), received as
 * Server-Sent Events from api/events. No third-party code; charts are drawn on <canvas>.
 *
 * Every field is read defensively: a missing or mistyped field shows blank (or 0), never an exception.
 */
(function () {
  "use strict";

  var STALE_AFTER_MS = 3000;         // no status for this long: the page says it is stale
  var THROUGHPUT_WINDOW_S = 60;      // the throughput chart shows the last minute
  var STREAM_WINDOW_S = 30;          // the task stream keeps the last 30 s
  var MAX_SPANS = 20000;             // the task stream keeps at most this many spans
  var MAX_LANES_PER_WORKER = 24;     // past this, spans share the lane that frees first
  var FAILED_COLOUR = "#e5484d";

  var state = {
    status: null,          // the newest status
    received: 0,           // Date.now() when it arrived
    count: 0,              // statuses received since the page loaded
    open: false,           // is the event stream open
    opened: 0,             // Date.now() when it opened
    source: null,
    hello: null,           // what the dashboard server said on connect
    helloAge: null,        // the age of the status that follows the hello (the server's newest)
    throughput: [],        // [[time, rate], ...] accumulated here when the status has no history
    previousEnded: null,   // {time, total} of the previous status, to derive a rate
    spans: [],             // {worker, fn, start, end, ok}
    streamNow: 0,          // the scheduler's time of the newest status
    tab: "overview",
    functionSort: { key: "count", descending: true },
    streamHits: []
  };

  // ------------------------------------------------------------------ safe readers

  function obj(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
  }

  function arr(value) {
    return Array.isArray(value) ? value : [];
  }

  function isNum(value) {
    return typeof value === "number" && isFinite(value);
  }

  /** The value if it is a finite number, else 0. */
  function num(value) {
    return isNum(value) ? value : 0;
  }

  /** The first argument that is a finite number, else undefined (shown blank). */
  function pick() {
    for (var i = 0; i < arguments.length; i++) {
      if (isNum(arguments[i])) return arguments[i];
    }
    return undefined;
  }

  function str(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "object") return "";
    return String(value);
  }

  // ------------------------------------------------------------------ formatting

  function fmtInt(value) {
    if (!isNum(value)) return "";
    var sign = value < 0 ? "-" : "";
    return sign + String(Math.round(Math.abs(value))).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function fmtNumber(value, digits) {
    if (!isNum(value)) return "";
    if (Math.abs(value) >= 100) return fmtInt(value);
    return value.toFixed(digits === undefined ? 1 : digits);
  }

  function fmtPercent(value) {
    return isNum(value) ? fmtNumber(value, value < 10 ? 1 : 0) + "%" : "";
  }

  function fmtBytes(value) {
    if (!isNum(value)) return "";
    var units = ["B", "KB", "MB", "GB", "TB", "PB"];
    var size = Math.abs(value);
    var unit = 0;
    while (size >= 1000 && unit < units.length - 1) {
      size /= 1000;
      unit += 1;
    }
    var digits = unit === 0 ? 0 : size < 10 ? 2 : size < 100 ? 1 : 0;
    return (value < 0 ? "-" : "") + size.toFixed(digits) + " " + units[unit];
  }

  function fmtSeconds(value) {
    if (!isNum(value)) return "";
    if (value === 0) return "0 s";
    if (value < 0.001) return (value * 1e6).toFixed(0) + " µs";
    if (value < 1) return (value * 1000).toFixed(value < 0.01 ? 2 : value < 0.1 ? 1 : 0) + " ms";
    if (value < 60) return value.toFixed(value < 10 ? 2 : 1) + " s";
    return fmtDuration(value);
  }

  function fmtDuration(value) {
    if (!isNum(value) || value < 0) return "";
    var s = Math.floor(value);
    var d = Math.floor(s / 86400);
    var h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    if (d > 0) return d + " d " + h + " h";
    if (h > 0) return h + " h " + (m < 10 ? "0" : "") + m + " m";
    if (m > 0) return m + " m " + (sec < 10 ? "0" : "") + sec + " s";
    return sec + " s";
  }

  function fmtClock(unixSeconds) {
    if (!isNum(unixSeconds) || unixSeconds <= 0) return "";
    var date = new Date(unixSeconds * 1000);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(date.getHours()) + ":" + two(date.getMinutes()) + ":" + two(date.getSeconds());
  }

  // ------------------------------------------------------------------ DOM helpers

  function byId(id) {
    return document.getElementById(id);
  }

  /** Set an element's text (only when it changed) and its data-value (the raw number, for scripts and tests). */
  function show(target, text, raw) {
    var element = typeof target === "string" ? byId(target) : target;
    if (!element) return;
    var value = raw === undefined || raw === null ? "" : String(raw);
    if (element.textContent !== text) element.textContent = text;
    if (element.getAttribute("data-value") !== value) element.setAttribute("data-value", value);
  }

  function make(tag, className, text) {
    var element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  }

  /** Keep tbody's rows in step with items: one row per key, created once, updated in place, in items' order. */
  function syncRows(tbody, items, keyOf, keyAttribute, create, update) {
    var existing = {};
    var rows = tbody.children;
    for (var i = 0; i < rows.length; i++) existing[rows[i].getAttribute(keyAttribute)] = rows[i];
    var seen = {};
    items.forEach(function (item, index) {
      var key = keyOf(item, index);
      if (seen[key]) return;  // two items of one key: the first wins
      seen[key] = true;
      var row = existing[key];
      if (!row) {
        row = create(item);
        row.setAttribute(keyAttribute, key);
      }
      update(row, item);
      if (tbody.children[index] !== row) tbody.insertBefore(row, tbody.children[index] || null);
    });
    Object.keys(existing).forEach(function (key) {
      if (!seen[key] && existing[key].parentNode === tbody) tbody.removeChild(existing[key]);
    });
  }

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name);
    return value && value.trim() ? value.trim() : fallback;
  }

  /** Size a canvas's backing store to its CSS box (times the pixel ratio); its 2-D context, or null if hidden. */
  function fitCanvas(canvas, cssHeight) {
    var width = canvas.clientWidth;
    if (!width) return null;
    canvas.style.height = cssHeight + "px";
    var ratio = window.devicePixelRatio || 1;
    var pixelWidth = Math.round(width * ratio);
    var pixelHeight = Math.round(cssHeight * ratio);
    if (canvas.width !== pixelWidth) canvas.width = pixelWidth;
    if (canvas.height !== pixelHeight) canvas.height = pixelHeight;
    var context = canvas.getContext("2d");
    if (!context) return null;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, cssHeight);
    return { context: context, width: width, height: cssHeight };
  }

  // ------------------------------------------------------------------ the status, normalised

  /** Task counts by state, from the documented layout (version 2) or the older one. */
  function taskCounts(status) {
    var tasks = obj(status.tasks);
    var legacy = !(num(status.version) >= 2);
    var inState = obj(tasks.in_state);
    return {
      waiting: pick(legacy ? inState.waiting : undefined, tasks.waiting),
      queued: pick(legacy ? inState.queued : undefined, tasks.queued),
      assigned: legacy ? pick(inState.assigned) : pick(tasks.assigned),
      running: pick(tasks.running),
      suspended: pick(tasks.suspended),
      succeeded: pick(tasks.succeeded, tasks.ended_success),
      failed: pick(tasks.failed, tasks.ended_raised),
      cancelled: pick(tasks.cancelled, tasks.ended_cancelled),
      submitted: pick(tasks.submitted),
      unfinished: pick(tasks.unfinished),
      endedPerSecond: pick(tasks.ended_per_second),
      endedPerSecondMinute: pick(tasks.ended_per_second_last_minute),
      history: arr(tasks.throughput_history)
    };
  }

  function processorsOf(worker) {
    var processors = worker.processors;
    if (Array.isArray(processors)) {
      return processors.map(function (processor) {
        var p = obj(processor);
        return { pid: p.pid, cpu: pick(p.cpu_percent), rss: pick(p.rss_bytes), busy: p.busy === true };
      });
    }
    var count = Math.max(0, Math.min(1024, Math.floor(num(processors))));
    var list = [];
    for (var i = 0; i < count; i++) list.push({ pid: undefined, cpu: undefined, rss: undefined, busy: null });
    return list;
  }

  // ------------------------------------------------------------------ receiving

  function onStatusText(text) {
    var status;
    try {
      status = JSON.parse(text);
    } catch (error) {
      console.warn("dashboard: a status that is not JSON was ignored", error);
      return;
    }
    if (status === null || typeof status !== "object" || Array.isArray(status)) return;
    state.status = status;
    state.received = Date.now() - (isNum(state.helloAge) ? Math.max(0, state.helloAge) * 1000 : 0);
    state.helloAge = null;
    state.count += 1;
    guarded("throughput", function () { ingestThroughput(status); });
    guarded("task stream", function () { ingestSpans(status); });
    render();
  }

  function guarded(what, action) {
    try {
      action();
    } catch (error) {
      console.error("dashboard: drawing " + what + " failed", error);
    }
  }

  function connect() {
    if (!window.EventSource) {
      show("connection-text", "this browser has no EventSource");
      return;
    }
    var source = new EventSource("api/events");
    state.source = source;
    source.onopen = function () {
      state.open = true;
      state.opened = Date.now();
      updateConnection();
    };
    source.onmessage = function (event) {
      state.open = true;
      onStatusText(event.data);
      updateConnection();
    };
    source.addEventListener("hello", function (event) {
      try {
        state.hello = obj(JSON.parse(event.data));
      } catch (error) {
        state.hello = null;
      }
      state.helloAge = state.hello ? pick(state.hello.status_age_seconds) : null;
      render();
    });
    source.onerror = function () {
      state.open = false;
      updateConnection();
      if (source.readyState === 2) {  // CLOSED: the browser gave up; try again ourselves
        source.close();
        setTimeout(function () { if (state.source === source) connect(); }, 2000);
      }
    };
  }

  // ------------------------------------------------------------------ connection state

  function updateConnection() {
    var now = Date.now();
    var age = state.received ? now - state.received : Infinity;
    var mode;
    var text;
    var detail = "";
    if (!state.open && (state.received || state.opened || now - started > STALE_AFTER_MS)) {
      mode = "disconnected";
      text = "disconnected";
      detail = "The dashboard server does not answer; reconnecting…" +
        (state.received ? " Figures are from " + Math.round(age / 1000) + " s ago." : "");
    } else if (!state.received) {
      var waited = state.opened ? now - state.opened : 0;
      mode = waited > STALE_AFTER_MS ? "stale" : "connecting";
      text = waited > STALE_AFTER_MS ? "no status yet" : "connecting…";
      detail = "No status from the scheduler yet" +
        (state.hello && state.hello.monitor_address ? " on " + str(state.hello.monitor_address) : "") + ".";
    } else if (age > STALE_AFTER_MS) {
      mode = "stale";
      text = "stale · " + Math.round(age / 1000) + " s";
      detail = "No status from the scheduler for " + Math.round(age / 1000) + " s; the figures below are stale.";
    } else {
      mode = "live";
      text = "live";
    }
    var badge = byId("connection");
    if (badge.getAttribute("data-state") !== mode) badge.setAttribute("data-state", mode);
    if (document.body.getAttribute("data-connection") !== mode) document.body.setAttribute("data-connection", mode);
    show("connection-text", text);
    var banner = byId("stale-banner");
    var showBanner = mode === "stale" || mode === "disconnected";
    if (banner.hidden === showBanner) banner.hidden = !showBanner;
    show("stale-title", mode === "disconnected" ? "Disconnected." : "Stale.");
    show("stale-detail", detail);
  }

  // ------------------------------------------------------------------ rendering

  function render() {
    var status = state.status || {};
    guarded("header", function () { renderHeader(status); });
    guarded("scheduler", function () { renderScheduler(status); });
    guarded("tasks", function () { renderTasks(status); });
    guarded("workers", function () { renderWorkers(status); });
    if (state.tab === "overview") guarded("throughput chart", drawThroughput);
    if (state.tab === "stream") guarded("task stream", drawStream);
    if (state.tab === "functions") guarded("functions", function () { renderFunctions(status); });
    if (state.tab === "clients") guarded("clients", function () { renderClients(status); });
  }

  function renderHeader(status) {
    var scheduler = obj(status.scheduler);
    var hello = obj(state.hello);
    var address = str(scheduler.address) || (hello.monitor_address ? "monitor " + str(hello.monitor_address) : "");
    show("scheduler-address", address, address);
    show("scheduler-pid", str(scheduler.pid), pick(scheduler.pid));
    show("scheduler-version", str(scheduler.version), str(scheduler.version));
    var statusTime = pick(status.time);
    var started = pick(scheduler.started);
    var uptime = isNum(started) && isNum(statusTime) ? statusTime - started : undefined;
    show("scheduler-uptime", fmtDuration(uptime), uptime);
    var layout = !state.status ? "" : str(status.version) ? "v" + str(status.version) : "v1";
    show("status-version", layout, pick(status.version));
    show("status-time", fmtClock(statusTime), statusTime);
    var title = "Scaler" + (address ? " · " + address : "");
    if (document.title !== title) document.title = title;
  }

  function renderScheduler(status) {
    var scheduler = obj(status.scheduler);
    var objects = obj(status.objects);
    var cpu = pick(scheduler.cpu_percent);
    var rss = pick(scheduler.rss_bytes);
    var messagesIn = pick(scheduler.messages_received_per_second);
    var messagesOut = pick(scheduler.messages_sent_per_second);
    show("scheduler-cpu", fmtPercent(cpu), cpu);
    show("scheduler-rss", fmtBytes(rss), rss);
    show("scheduler-messages-in", fmtNumber(messagesIn), messagesIn);
    show("scheduler-messages-out", fmtNumber(messagesOut), messagesOut);
    show("scheduler-malformed", fmtInt(pick(scheduler.malformed_messages)), pick(scheduler.malformed_messages));
    show("objects-count", fmtInt(pick(objects.count)), pick(objects.count));
    show("objects-bytes", isNum(objects.bytes) ? "(" + fmtBytes(objects.bytes) + ")" : "", pick(objects.bytes));
    var functions = pick(objects.functions);
    show("objects-functions",
      isNum(functions) ? fmtInt(functions) + (isNum(objects.function_bytes) ? " (" + fmtBytes(objects.function_bytes) + ")" : "") : "",
      functions);
  }

  function renderTasks(status) {
    var counts = taskCounts(status);
    ["waiting", "queued", "assigned", "running", "suspended", "succeeded", "failed", "cancelled",
      "submitted", "unfinished"].forEach(function (name) {
      show("tasks-" + name, fmtInt(counts[name]), counts[name]);
    });
  }

  // ---- workers

  function renderWorkers(status) {
    var workers = arr(status.workers).map(obj).filter(function (worker) { return str(worker.name) !== ""; });
    workers.sort(function (a, b) { return str(a.name) < str(b.name) ? -1 : str(a.name) > str(b.name) ? 1 : 0; });
    var maxRss = 0;
    var totalProcessors = 0;
    var busyProcessors = 0;
    workers.forEach(function (worker) {
      maxRss = Math.max(maxRss, num(worker.rss_bytes));
      var processors = processorsOf(worker);
      totalProcessors += processors.length;
      processors.forEach(function (p) { if (p.busy) busyProcessors += 1; });
    });
    // The memory bars share one scale: the largest worker, or 1 GB if every worker is smaller.
    var memoryScale = Math.max(1e9, maxRss);
    var tbody = byId("workers-body");
    syncRows(tbody, workers, function (worker) { return str(worker.name); }, "data-worker", createWorkerRow,
      function (row, worker) { updateWorkerRow(row, worker, memoryScale); });
    byId("workers-empty").hidden = workers.length > 0;
    show("workers-summary",
      workers.length ? workers.length + (workers.length === 1 ? " worker · " : " workers · ") +
        totalProcessors + " processors" + (totalProcessors ? ", " + busyProcessors + " busy" : "") : "",
      workers.length);
  }

  function createWorkerRow() {
    var row = make("tr", "worker-row");
    var name = make("td", "col-name");
    name.appendChild(make("div", "worker-name"));
    name.appendChild(make("div", "worker-host muted"));
    row.appendChild(name);
    var procs = make("td", "col-procs");
    procs.appendChild(make("div", "processors"));
    procs.appendChild(make("div", "processors-label muted"));
    row.appendChild(procs);
    row.appendChild(barCell("cpu"));
    row.appendChild(barCell("memory"));
    ["queued", "running", "succeeded", "failed", "heartbeat"].forEach(function (field) {
      row.appendChild(make("td", "num worker-" + field));
    });
    return row;
  }

  function barCell(kind) {
    var cell = make("td", "col-bar");
    var bar = make("div", "bar bar-" + kind);
    var fill = make("div", "bar-fill");
    bar.appendChild(fill);
    bar.appendChild(make("span", "bar-label"));
    cell.appendChild(bar);
    return cell;
  }

  function setBar(bar, value, scale, label, title) {
    var fraction = isNum(value) && scale > 0 ? Math.max(0, Math.min(1, value / scale)) : 0;
    var fill = bar.querySelector(".bar-fill");
    var width = (fraction * 100).toFixed(1) + "%";
    if (fill.style.width !== width) fill.style.width = width;
    bar.setAttribute("data-value", isNum(value) ? String(value) : "");
    bar.setAttribute("data-scale", String(scale));
    bar.classList.toggle("bar-high", fraction >= 0.85);
    show(bar.querySelector(".bar-label"), label);
    bar.title = title;
  }

  function updateWorkerRow(row, worker, memoryScale) {
    var name = str(worker.name);
    show(row.querySelector(".worker-name"), name);
    var host = [str(worker.hostname), str(worker.pid) ? "pid " + str(worker.pid) : ""].filter(Boolean).join(" · ");
    show(row.querySelector(".worker-host"), host);

    var processors = processorsOf(worker);
    renderProcessors(row.querySelector(".processors"), processors);
    var busy = processors.filter(function (p) { return p.busy === true; }).length;
    var known = processors.some(function (p) { return p.busy !== null; });
    show(row.querySelector(".processors-label"),
      processors.length ? (known ? busy + "/" + processors.length + " busy" : processors.length + "") : "", busy);

    // CPU is % of one core; the bar is full when every processor spins (100% each).
    var cpu = pick(worker.cpu_percent);
    var cpuScale = 100 * Math.max(1, processors.length);
    setBar(row.querySelector(".bar-cpu"), cpu, cpuScale, fmtPercent(cpu),
      fmtPercent(cpu) + " of one core; the bar is full at " + cpuScale + "% (" +
      Math.max(1, processors.length) + " × 100%)" +
      (isNum(worker.agent_cpu_percent) ? "; agent alone " + fmtPercent(worker.agent_cpu_percent) : ""));

    var rss = pick(worker.rss_bytes);
    setBar(row.querySelector(".bar-memory"), rss, memoryScale, fmtBytes(rss),
      fmtBytes(rss) + " resident (agent and processors)" +
      (isNum(worker.agent_rss_bytes) ? "; agent alone " + fmtBytes(worker.agent_rss_bytes) : "") +
      "; the bar is full at " + fmtBytes(memoryScale));

    var queueSize = pick(worker.queue_size, worker.per_worker_queue_size);
    var queued = pick(worker.queued);
    var queuedCell = row.querySelector(".worker-queued");
    show(queuedCell, fmtInt(queued), queued);
    queuedCell.title = (isNum(queueSize) ? "holds at most " + fmtInt(queueSize) + " tasks" : "") +
      (isNum(worker.held_seconds) ? "; about " + fmtSeconds(worker.held_seconds) + " of work held" : "");
    var running = pick(worker.running);
    var suspended = pick(worker.suspended);
    show(row.querySelector(".worker-running"),
      fmtInt(running) + (isNum(suspended) && suspended > 0 ? " (" + fmtInt(suspended) + " susp.)" : ""), running);
    show(row.querySelector(".worker-succeeded"), fmtInt(pick(worker.succeeded)), pick(worker.succeeded));
    var failed = pick(worker.failed);
    var failedCell = row.querySelector(".worker-failed");
    show(failedCell, fmtInt(failed), failed);
    failedCell.classList.toggle("bad", num(failed) > 0);
    var age = pick(worker.heartbeat_age_seconds);
    var heartbeat = row.querySelector(".worker-heartbeat");
    show(heartbeat, isNum(age) ? age.toFixed(1) + " s ago" : "", age);
    heartbeat.classList.toggle("warn", isNum(age) && age > 5);
  }

  function renderProcessors(container, processors) {
    while (container.children.length > processors.length) container.removeChild(container.lastChild);
    while (container.children.length < processors.length) container.appendChild(make("span", "processor"));
    processors.forEach(function (processor, index) {
      var dot = container.children[index];
      var busy = processor.busy === true;
      dot.classList.toggle("busy", busy);
      dot.classList.toggle("unknown", processor.busy === null);
      dot.title = "processor " + (index + 1) + (processor.pid !== undefined ? " (pid " + str(processor.pid) + ")" : "") +
        (processor.busy === null ? "" : busy ? ": busy" : ": idle") +
        (isNum(processor.cpu) ? ", cpu " + fmtPercent(processor.cpu) : "") +
        (isNum(processor.rss) ? ", " + fmtBytes(processor.rss) : "");
    });
    container.setAttribute("data-count", String(processors.length));
  }

  // ---- throughput

  function ingestThroughput(status) {
    var counts = taskCounts(status);
    var time = pick(status.time, Date.now() / 1000);
    var total = num(counts.succeeded) + num(counts.failed) + num(counts.cancelled);
    var rate = counts.endedPerSecond;
    var previous = state.previousEnded;
    if (!isNum(rate) && previous && time > previous.time) {
      rate = Math.max(0, (total - previous.total) / (time - previous.time));
    }
    state.previousEnded = { time: time, total: total };
    var points = state.throughput;
    if (points.length && time <= points[points.length - 1][0]) {
      if (time < points[points.length - 1][0] - 5) points.length = 0;  // the scheduler restarted or its clock moved
      else return;
    }
    if (isNum(rate)) points.push([time, Math.max(0, rate)]);
    while (points.length && points[0][0] < time - THROUGHPUT_WINDOW_S - 5) points.shift();
  }

  function throughputPoints() {
    var status = state.status || {};
    var history = taskCounts(status).history
      .filter(function (point) { return Array.isArray(point) && isNum(point[0]) && isNum(point[1]); })
      .map(function (point) { return [point[0], Math.max(0, point[1])]; })
      .sort(function (a, b) { return a[0] - b[0]; });
    return history.length >= 2 ? history : state.throughput.slice();
  }

  /** Axis ticks for 0..value: a round step (1, 2, 2.5 or 5 times a power of ten) and at most 4 of them. */
  function niceTicks(value) {
    if (!(value > 0)) value = 1;
    var rough = value / 4;
    var power = Math.pow(10, Math.floor(Math.log10(rough)));
    var steps = [1, 2, 2.5, 5, 10];
    var step = 10 * power;
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * power >= rough) { step = steps[i] * power; break; }
    }
    var count = Math.max(1, Math.ceil(value / step - 1e-9));
    return { step: step, count: count, ceiling: step * count };
  }

  function drawThroughput() {
    var canvas = byId("throughput-chart");
    var status = state.status || {};
    var counts = taskCounts(status);
    var points = throughputPoints();
    var latest = points.length ? points[points.length - 1][1] : undefined;
    var now = pick(status.time, points.length ? points[points.length - 1][0] : undefined, Date.now() / 1000);
    var windowed = points.filter(function (point) { return point[0] >= now - THROUGHPUT_WINDOW_S; });
    var minute = pick(counts.endedPerSecondMinute);
    if (!isNum(minute) && windowed.length) {
      minute = windowed.reduce(function (sum, point) { return sum + point[1]; }, 0) / windowed.length;
    }
    var current = pick(counts.endedPerSecond, latest);
    show("throughput-now", isNum(current) ? fmtNumber(current) + "/s" : "", current);
    show("throughput-minute", isNum(minute) ? fmtNumber(minute) + "/s" : "", minute);

    var box = fitCanvas(canvas, 190);
    if (!box) return;
    var ctx = box.context;
    var left = 46, right = box.width - 12, top = 12, bottom = box.height - 24;
    var peak = windowed.reduce(function (max, point) { return Math.max(max, point[1]); }, 0);
    var ticks = niceTicks(Math.max(peak * 1.05, 1));
    var ceiling = ticks.ceiling;
    var tickDigits = ticks.step >= 1 && ticks.step % 1 === 0 ? 0 : ticks.step * 10 % 1 === 0 ? 1 : 2;
    var grid = cssVar("--grid", "#e6e8eb");
    var muted = cssVar("--muted", "#6b7280");
    var accent = cssVar("--accent", "#2563eb");
    var accentFill = cssVar("--accent-fill", "rgba(37, 99, 235, 0.14)");

    ctx.font = "11px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
    ctx.lineWidth = 1;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    for (var i = 0; i <= ticks.count; i++) {
      var y = Math.round(bottom - (bottom - top) * i / ticks.count) + 0.5;
      ctx.strokeStyle = grid;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(right, y);
      ctx.stroke();
      ctx.fillStyle = muted;
      var tick = ticks.step * i;
      ctx.fillText(tick >= 100 ? fmtInt(tick) : tick.toFixed(tickDigits), left - 6, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (var s = 0; s <= THROUGHPUT_WINDOW_S; s += 15) {
      var x = left + (right - left) * (1 - s / THROUGHPUT_WINDOW_S);
      ctx.fillStyle = muted;
      ctx.fillText(s === 0 ? "now" : "-" + s + " s", Math.min(Math.max(x, left + 14), right - 12), bottom + 6);
    }

    function xOf(time) { return left + (right - left) * (1 - (now - time) / THROUGHPUT_WINDOW_S); }
    function yOf(rate) { return bottom - (bottom - top) * Math.min(1, rate / ceiling); }

    canvas.setAttribute("data-points", String(windowed.length));
    canvas.setAttribute("data-peak", String(peak));
    if (!windowed.length) {
      ctx.fillStyle = muted;
      ctx.textBaseline = "middle";
      ctx.fillText("waiting for data…", (left + right) / 2, (top + bottom) / 2);
      return;
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top - 2, right - left, bottom - top + 4);
    ctx.clip();
    ctx.beginPath();
    ctx.moveTo(xOf(windowed[0][0]), bottom);
    windowed.forEach(function (point) { ctx.lineTo(xOf(point[0]), yOf(point[1])); });
    ctx.lineTo(xOf(windowed[windowed.length - 1][0]), bottom);
    ctx.closePath();
    ctx.fillStyle = accentFill;
    ctx.fill();
    ctx.beginPath();
    windowed.forEach(function (point, index) {
      if (index === 0) ctx.moveTo(xOf(point[0]), yOf(point[1]));
      else ctx.lineTo(xOf(point[0]), yOf(point[1]));
    });
    ctx.strokeStyle = accent;
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    ctx.stroke();
    if (windowed.length === 1) {
      ctx.fillStyle = accent;
      ctx.beginPath();
      ctx.arc(xOf(windowed[0][0]), yOf(windowed[0][1]), 3, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.restore();
  }

  // ---- task stream

  function ingestSpans(status) {
    var now = pick(status.time);
    arr(status.task_stream).forEach(function (entry) {
      var worker, fn, start, end, ok;
      if (Array.isArray(entry)) {
        worker = entry[0]; fn = entry[1]; start = entry[2]; end = entry[3]; ok = entry[4];
      } else {
        var e = obj(entry);
        worker = e.worker; fn = e["function"]; start = e.start; end = e.end; ok = e.succeeded;
      }
      if (!isNum(end)) return;
      if (!isNum(start) || start > end) start = end;
      state.spans.push({ worker: str(worker), fn: str(fn) || "(unknown)", start: start, end: end, ok: ok !== false });
      if (!isNum(now)) now = end;
      else if (end > now) now = end;
    });
    if (isNum(now)) {
      if (now < state.streamNow - 5) state.spans = state.spans.filter(function (span) { return span.end <= now; });
      state.streamNow = now;
    }
    var cutoff = state.streamNow - STREAM_WINDOW_S;
    state.spans = state.spans.filter(function (span) { return span.end >= cutoff; });
    if (state.spans.length > MAX_SPANS) state.spans = state.spans.slice(state.spans.length - MAX_SPANS);
  }

  function hashString(text) {
    var hash = 2166136261;
    for (var i = 0; i < text.length; i++) {
      hash ^= text.charCodeAt(i);
      hash = Math.imul(hash, 16777619);
    }
    return hash >>> 0;
  }

  // Distinct colours for functions, none of them red (red marks failures).
  var PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#a0cbe8",
    "#8cd17d", "#d4a6c8", "#499894", "#ffbe7d", "#86bcb6", "#6b5b95", "#c9b16b"];
  var colours = {};
  var coloursUsed = {};

  /** A colour per function name: a palette colour chosen by the name's hash (the next free one if taken),
   *  so a function keeps its colour for the page's life and, mostly, across reloads. */
  function functionColour(name) {
    if (colours[name]) return colours[name];
    var hash = hashString(name);
    var colour = null;
    for (var i = 0; i < PALETTE.length; i++) {
      var candidate = PALETTE[(hash + i) % PALETTE.length];
      if (!coloursUsed[candidate]) { colour = candidate; break; }
    }
    if (!colour) colour = "hsl(" + (25 + (hash % 300)) + ", 55%, " + (45 + ((hash >>> 9) % 3) * 8) + "%)";
    coloursUsed[colour] = true;
    colours[name] = colour;
    return colour;
  }

  /** Spans of one worker, each given the first lane free at its start. Returns the number of lanes.
   *  A lane counts as free when it frees less than ``tolerance`` seconds after the start (an overlap too small
   *  to see, from the jitter of when results reach the scheduler), so only real concurrency opens lanes. */
  function packLanes(spans, tolerance, maxLanes) {
    spans.sort(function (a, b) { return a.start - b.start || a.end - b.end; });
    var laneEnds = [];
    spans.forEach(function (span) {
      var lane = -1;
      for (var i = 0; i < laneEnds.length; i++) {
        if (laneEnds[i] <= span.start + tolerance) { lane = i; break; }
      }
      if (lane < 0) {
        if (laneEnds.length < maxLanes) {
          lane = laneEnds.length;
          laneEnds.push(span.end);
        } else {  // too many at once: the lane that frees first
          lane = 0;
          for (var j = 1; j < laneEnds.length; j++) if (laneEnds[j] < laneEnds[lane]) lane = j;
        }
      }
      laneEnds[lane] = Math.max(laneEnds[lane], span.end);
      span.lane = lane;
    });
    return Math.max(1, laneEnds.length);
  }

  function drawStream() {
    var status = state.status || {};
    var canvas = byId("task-stream-canvas");
    var now = state.streamNow || pick(status.time, Date.now() / 1000);
    var cutoff = now - STREAM_WINDOW_S;
    var spans = state.spans.filter(function (span) { return span.end >= cutoff; });

    var byWorker = {};
    arr(status.workers).forEach(function (worker) {
      var name = str(obj(worker).name);
      if (name) byWorker[name] = [];
    });
    spans.forEach(function (span) {
      (byWorker[span.worker] = byWorker[span.worker] || []).push(span);
    });
    var names = Object.keys(byWorker).sort();
    var processorCounts = {};
    arr(status.workers).forEach(function (worker) {
      var w = obj(worker);
      processorCounts[str(w.name)] = processorsOf(w).length;
    });
    // Two pixels' worth of time: overlaps shorter than that do not open a lane.
    var plotWidth = Math.max(100, canvas.clientWidth - Math.min(170, Math.max(90, canvas.clientWidth * 0.16)) - 12);
    var tolerance = 2 * STREAM_WINDOW_S / plotWidth;
    var lanes = {};
    var totalLanes = 0;
    names.forEach(function (name) {
      var maxLanes = Math.max(MAX_LANES_PER_WORKER, Math.min(256, processorCounts[name] || 0));
      lanes[name] = packLanes(byWorker[name], tolerance, maxLanes);
      totalLanes += lanes[name];
    });
    var mostLanes = names.reduce(function (most, name) { return Math.max(most, lanes[name]); }, 1);

    var laneHeight = mostLanes > 32 ? 5 : mostLanes > 8 ? 9 : 14;
    var laneGap = mostLanes > 32 ? 1 : mostLanes > 8 ? 2 : 3;
    var blockPadding = 8, axisHeight = 26;
    var height = axisHeight + 6;
    names.forEach(function (name) { height += lanes[name] * (laneHeight + laneGap) - laneGap + 2 * blockPadding; });
    height = Math.max(height, 90);

    canvas.setAttribute("data-spans", String(spans.length));
    canvas.setAttribute("data-workers", String(names.length));
    canvas.setAttribute("data-lanes", String(totalLanes));
    show("stream-count", fmtInt(spans.length), spans.length);
    byId("stream-empty").hidden = spans.length > 0;
    renderLegend(spans);

    var box = fitCanvas(canvas, height);
    if (!box) return;
    var ctx = box.context;
    var gutter = Math.min(170, Math.max(90, box.width * 0.16));
    var left = gutter, right = box.width - 12;
    var muted = cssVar("--muted", "#6b7280");
    var grid = cssVar("--grid", "#e6e8eb");
    var text = cssVar("--text", "#111827");
    var laneBackground = cssVar("--lane", "#f3f4f6");
    function xOf(time) { return left + (right - left) * (1 - (now - time) / STREAM_WINDOW_S); }

    ctx.font = "11px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
    // time grid
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (var s = 0; s <= STREAM_WINDOW_S; s += 5) {
      var gx = Math.round(xOf(now - s)) + 0.5;
      ctx.strokeStyle = grid;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(gx, 0);
      ctx.lineTo(gx, box.height - axisHeight);
      ctx.stroke();
      ctx.fillStyle = muted;
      ctx.fillText(s === 0 ? "now" : "-" + s + " s", Math.min(Math.max(gx, left + 14), right - 12),
        box.height - axisHeight + 7);
    }

    var hits = [];
    var y = 6;
    var drawn = 0;
    names.forEach(function (name, index) {
      var blockHeight = lanes[name] * (laneHeight + laneGap) - laneGap + 2 * blockPadding;
      if (index > 0) {
        ctx.strokeStyle = grid;
        ctx.beginPath();
        ctx.moveTo(0, Math.round(y) + 0.5);
        ctx.lineTo(box.width, Math.round(y) + 0.5);
        ctx.stroke();
      }
      ctx.fillStyle = text;
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      var count = byWorker[name].length;
      var countText = fmtInt(count);
      ctx.font = "11px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
      var countWidth = ctx.measureText(countText).width;
      ctx.font = "600 12px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
      ctx.fillText(ellipsize(ctx, name, gutter - 28 - countWidth), 8, y + blockPadding + laneHeight / 2);
      ctx.font = "11px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
      ctx.fillStyle = muted;
      ctx.textAlign = "right";
      ctx.fillText(countText, gutter - 12, y + blockPadding + laneHeight / 2);
      for (var lane = 0; lane < lanes[name]; lane++) {
        ctx.fillStyle = laneBackground;
        ctx.fillRect(left, y + blockPadding + lane * (laneHeight + laneGap), right - left, laneHeight);
      }
      byWorker[name].forEach(function (span) {
        var x0 = Math.max(left, xOf(span.start));
        var x1 = Math.min(right, xOf(span.end));
        if (x1 < left) return;
        var width = Math.max(1.5, x1 - x0);
        var top = y + blockPadding + span.lane * (laneHeight + laneGap);
        ctx.fillStyle = span.ok ? functionColour(span.fn) : FAILED_COLOUR;
        ctx.fillRect(x0, top, width, laneHeight);
        drawn += 1;
        hits.push({ x0: x0, x1: x0 + Math.max(width, 3), y0: top, y1: top + laneHeight, span: span });
      });
      y += blockHeight;
    });
    if (!names.length) {
      ctx.fillStyle = muted;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("no worker connected", (left + right) / 2, (box.height - axisHeight) / 2);
    }
    canvas.setAttribute("data-drawn", String(drawn));
    state.streamHits = hits;
  }

  function ellipsize(ctx, text, width) {
    if (ctx.measureText(text).width <= width) return text;
    var shortened = text;
    while (shortened.length > 1 && ctx.measureText(shortened + "…").width > width) shortened = shortened.slice(0, -1);
    return shortened + "…";
  }

  function renderLegend(spans) {
    var counts = {};
    var failed = 0;
    spans.forEach(function (span) {
      counts[span.fn] = (counts[span.fn] || 0) + 1;
      if (!span.ok) failed += 1;
    });
    var names = Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a] || (a < b ? -1 : 1); });
    var items = names.slice(0, 30).map(function (name) {
      return { key: name, label: name, colour: functionColour(name), count: counts[name] };
    });
    if (failed) items.push({ key: "(failed)", label: "failed", colour: FAILED_COLOUR, count: failed });
    var legend = byId("task-stream-legend");
    var keyed = {};
    Array.prototype.forEach.call(legend.children, function (child) { keyed[child.getAttribute("data-function")] = child; });
    var keep = {};
    items.forEach(function (item, index) {
      var element = keyed[item.key];
      if (!element) {
        element = make("span", "legend-item");
        element.setAttribute("data-function", item.key);
        element.appendChild(make("span", "swatch"));
        element.appendChild(make("span", "legend-name"));
        element.appendChild(make("span", "legend-count muted"));
      }
      element.querySelector(".swatch").style.background = item.colour;
      show(element.querySelector(".legend-name"), item.label);
      show(element.querySelector(".legend-count"), fmtInt(item.count), item.count);
      if (legend.children[index] !== element) legend.insertBefore(element, legend.children[index] || null);
      keep[item.key] = true;
    });
    Object.keys(keyed).forEach(function (key) { if (!keep[key]) legend.removeChild(keyed[key]); });
  }

  function onStreamHover(event) {
    var canvas = byId("task-stream-canvas");
    var tooltip = byId("stream-tooltip");
    var rect = canvas.getBoundingClientRect();
    var x = event.clientX - rect.left;
    var y = event.clientY - rect.top;
    var hit = null;
    for (var i = state.streamHits.length - 1; i >= 0; i--) {
      var h = state.streamHits[i];
      if (x >= h.x0 && x <= h.x1 && y >= h.y0 && y <= h.y1) { hit = h; break; }
    }
    if (!hit) {
      tooltip.hidden = true;
      return;
    }
    var span = hit.span;
    tooltip.textContent = "";
    tooltip.appendChild(make("div", "tooltip-title", span.fn));
    tooltip.appendChild(make("div", "", span.worker));
    tooltip.appendChild(make("div", span.ok ? "" : "bad",
      fmtSeconds(span.end - span.start) + (span.ok ? " · succeeded" : " · failed") +
      " · ended " + fmtClock(span.end)));
    tooltip.hidden = false;
    var left = Math.min(x + 14, rect.width - tooltip.offsetWidth - 4);
    tooltip.style.left = Math.max(0, left) + "px";
    tooltip.style.top = (y + 14) + "px";
  }

  // ---- functions

  function renderFunctions(status) {
    var functions = arr(status.functions).map(obj).filter(function (fn) { return str(fn.name) !== ""; });
    var sort = state.functionSort;
    functions.sort(function (a, b) {
      var x = a[sort.key], y = b[sort.key];
      var order;
      if (sort.key === "name") order = str(x) < str(y) ? -1 : str(x) > str(y) ? 1 : 0;
      else order = num(x) - num(y) || (str(a.name) < str(b.name) ? 1 : -1);
      return sort.descending ? -order : order;
    });
    syncRows(byId("functions-body"), functions, function (fn) { return str(fn.name); }, "data-function",
      function () {
        var row = make("tr");
        row.appendChild(make("td", "fn-name mono"));
        ["count", "mean", "max", "failures"].forEach(function (field) { row.appendChild(make("td", "num fn-" + field)); });
        return row;
      },
      function (row, fn) {
        show(row.querySelector(".fn-name"), str(fn.name));
        show(row.querySelector(".fn-count"), fmtInt(pick(fn.count)), pick(fn.count));
        show(row.querySelector(".fn-mean"), fmtSeconds(pick(fn.mean_seconds)), pick(fn.mean_seconds));
        show(row.querySelector(".fn-max"), fmtSeconds(pick(fn.max_seconds)), pick(fn.max_seconds));
        var failures = pick(fn.failures);
        var cell = row.querySelector(".fn-failures");
        show(cell, fmtInt(failures), failures);
        cell.classList.toggle("bad", num(failures) > 0);
      });
    var empty = byId("functions-empty");
    empty.hidden = functions.length > 0;
    empty.textContent = Array.isArray(status.functions) || !state.status
      ? "No function has run yet."
      : "This scheduler does not publish per-function figures (status layout " +
        (str(status.version) ? "v" + str(status.version) : "v1") + ").";
    Array.prototype.forEach.call(document.querySelectorAll("#functions-table th[data-sort]"), function (th) {
      var active = th.getAttribute("data-sort") === sort.key;
      th.classList.toggle("sorted", active);
      th.classList.toggle("descending", active && sort.descending);
    });
  }

  function onSortClick(event) {
    var th = event.target.closest("th[data-sort]");
    if (!th) return;
    var key = th.getAttribute("data-sort");
    if (state.functionSort.key === key) state.functionSort.descending = !state.functionSort.descending;
    else state.functionSort = { key: key, descending: key !== "name" };
    renderFunctions(state.status || {});
  }

  // ---- clients

  function renderClients(status) {
    var clients = arr(status.clients).map(obj);
    clients.sort(function (a, b) { return num(a.number) - num(b.number); });
    syncRows(byId("clients-body"), clients,
      function (client, index) { return str(client.number) + "/" + (str(client.name) || String(index)); },
      "data-client-key",
      function () {
        var row = make("tr");
        row.appendChild(make("td", "client-name mono"));
        row.appendChild(make("td", "client-host"));
        ["tasks", "objects", "submitted", "succeeded", "failed"].forEach(function (field) {
          row.appendChild(make("td", "num client-" + field));
        });
        return row;
      },
      function (row, client) {
        row.setAttribute("data-client", str(client.name));
        show(row.querySelector(".client-name"), (str(client.number) ? "#" + str(client.number) + " " : "") + str(client.name));
        show(row.querySelector(".client-host"),
          [str(client.hostname), str(client.pid) ? "pid " + str(client.pid) : ""].filter(Boolean).join(" · "));
        ["tasks", "objects", "submitted", "succeeded", "failed"].forEach(function (field) {
          show(row.querySelector(".client-" + field), fmtInt(pick(client[field])), pick(client[field]));
        });
        row.querySelector(".client-failed").classList.toggle("bad", num(client.failed) > 0);
      });
    byId("clients-empty").hidden = clients.length > 0;
  }

  // ------------------------------------------------------------------ tabs

  function showTab(name) {
    var views = document.querySelectorAll("[data-view]");
    var known = Array.prototype.some.call(views, function (view) { return view.getAttribute("data-view") === name; });
    if (!known) name = "overview";
    state.tab = name;
    Array.prototype.forEach.call(views, function (view) { view.hidden = view.getAttribute("data-view") !== name; });
    Array.prototype.forEach.call(document.querySelectorAll("[data-tab]"), function (tab) {
      var active = tab.getAttribute("data-tab") === name;
      tab.classList.toggle("active", active);
      tab.setAttribute("aria-selected", active ? "true" : "false");
    });
    document.body.setAttribute("data-tab", name);
    render();
  }

  function tabFromHash() {
    return (window.location.hash || "#overview").slice(1) || "overview";
  }

  // ------------------------------------------------------------------ start

  var started = Date.now();

  function start() {
    window.addEventListener("hashchange", function () { showTab(tabFromHash()); });
    var resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(render, 100);
    });
    byId("functions-table").addEventListener("click", onSortClick);
    var canvas = byId("task-stream-canvas");
    canvas.addEventListener("mousemove", onStreamHover);
    canvas.addEventListener("mouseleave", function () { byId("stream-tooltip").hidden = true; });
    showTab(tabFromHash());
    updateConnection();
    setInterval(updateConnection, 500);
    connect();
  }

  // For scripts and tests: the newest status and the spans kept, read-only copies.
  window.scalerDashboard = {
    status: function () { return state.status; },
    received: function () { return state.count; },
    spans: function () { return state.spans.slice(); },
    connection: function () { return byId("connection").getAttribute("data-state"); }
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
