/* The amber compliance report page: everything is drawn from the JSON document embedded in
   the page (the output of `amber report --json`). Text reaches the page only through
   textContent, never as markup, so names, tags and reasons show exactly as recorded. */
(function () {
  "use strict";

  var TIMELINE_MAX = 150; // snapshots drawn in the timeline (the table lists them all)
  var COLORS = ["#2e6fdb", "#0e9384", "#7a5af8", "#c4320a", "#4e5ba6", "#099250", "#dd2590", "#b54708"];
  var data = JSON.parse(document.getElementById("amber-report-data").textContent);
  window.amberReport = { data: data, rendered: false, charts: {} };
  var root = document.getElementById("report");

  // -- building blocks -------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function time(iso) {
    return iso ? String(iso).slice(0, 19).replace("T", " ") + " UTC" : "—";
  }

  /* A time as a <time> element: shown readably, its datetime attribute exactly as recorded. */
  function stamp(iso, suffix) {
    if (!iso) return "—";
    return el("time", { datetime: String(iso), text: time(iso) + (suffix || "") });
  }

  function bytes(n) {
    if (n === null || n === undefined) return "—";
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + " " + units[i];
  }

  function seconds(s) {
    if (s === null || s === undefined) return "—";
    if (s < 120) return s.toFixed(1) + " s";
    if (s < 7200) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  function badge(kind, label) {
    return el("span", { class: "badge " + kind, text: label });
  }

  function verdict(ok) {
    if (ok === true) return badge("ok", "passed");
    if (ok === false) return badge("failed", "FAILED");
    return badge("none", "unknown");
  }

  function ms(iso) {
    return new Date(iso).getTime();
  }

  /* A table: columns are {key, title, value(row) -> string or node, num}; each row a <tr>
     with data-key, each cell a <td data-field=key>. */
  function table(id, columns, rows, key) {
    if (!rows.length) return el("p", { class: "empty", id: id, text: "None." });
    var head = el("tr", {}, columns.map(function (c) { return el("th", { text: c.title }); }));
    var body = rows.map(function (r) {
      var tr = el("tr", key ? { "data-key": String(key(r)) } : {});
      columns.forEach(function (c) {
        var v = c.value(r);
        var td = el("td", { "data-field": c.key, class: c.num ? "num" : "" });
        if (v !== null && typeof v === "object") td.appendChild(v);
        else td.textContent = v === null || v === undefined || v === "" ? "—" : String(v);
        tr.appendChild(td);
      });
      return tr;
    });
    return el("table", { id: id }, [el("thead", {}, [head]), el("tbody", {}, body)]);
  }

  function section(id, title, explanation, children) {
    root.appendChild(el("section", { id: id }, [el("h2", { text: title }), el("p", { class: "explain", text: explanation })].concat(children)));
  }

  function facts(pairs) {
    var dl = el("dl", { class: "facts" });
    pairs.forEach(function (p) {
      dl.appendChild(el("dt", { text: p[0] }));
      var dd = el("dd", {});
      if (p[1] !== null && typeof p[1] === "object") dd.appendChild(p[1]);
      else dd.textContent = p[1] === null || p[1] === undefined || p[1] === "" ? "—" : String(p[1]);
      dl.appendChild(dd);
    });
    return dl;
  }

  function lockText(lock) {
    if (!lock) return "no lock";
    return lock.mode + " until " + time(lock.until) + (lock.active ? "" : " (expired)");
  }

  function retentionText(r) {
    return r ? r.duration + " (" + r.mode + ")" : "none";
  }

  function policyText(p) {
    if (!p) return "none";
    return Object.keys(p.tiers).map(function (k) { return k + " " + p.tiers[k]; }).join(", ") + " (" + p.mode + ")";
  }

  // -- charts ----------------------------------------------------------------------------------

  function dateTicks(value) {
    return new Date(value).toISOString().slice(0, 10);
  }

  var nowLine = {
    id: "nowLine",
    afterDatasetsDraw: function (chart) {
      var x = chart.scales.x.getPixelForValue(ms(data.report.generated));
      var area = chart.chartArea;
      if (x < area.left || x > area.right) return;
      var ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = "#b42318";
      ctx.setLineDash([4, 4]);
      ctx.beginPath();
      ctx.moveTo(x, area.top);
      ctx.lineTo(x, area.bottom);
      ctx.stroke();
      ctx.fillStyle = "#b42318";
      ctx.fillText("now", x + 4, area.top + 10);
      ctx.restore();
    }
  };

  function chartBox(id, height, label) {
    var canvas = el("canvas", { id: id, role: "img", "aria-label": label });
    return { box: el("div", { class: "chart", style: "height:" + height + "px" }, [canvas]), canvas: canvas };
  }

  function timeline(snaps) {
    var shown = snaps.slice(-TIMELINE_MAX).slice().sort(function (a, b) {
      return a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : ms(a.time) - ms(b.time);
    });
    var now = ms(data.report.generated);
    var start = Math.min.apply(null, shown.map(function (s) { return ms(s.time); }));
    var end = Math.max.apply(null, [now].concat(shown.map(function (s) { return s.lock ? ms(s.lock.until) : ms(s.time); })));
    var pad = Math.max((end - start) * 0.03, 3600000);
    var mark = (end - start + 2 * pad) * 0.004;
    var hosts = [];
    shown.forEach(function (s) { if (hosts.indexOf(s.hostname) < 0) hosts.push(s.hostname); });
    var labels = shown.map(function (s) { return s.hostname + " · " + s.short_id; });
    var datasets = hosts.map(function (h, i) {
      return {
        label: "locked (" + h + ")",
        data: shown.map(function (s) { return s.hostname === h && s.lock ? [ms(s.time), ms(s.lock.until)] : null; }),
        backgroundColor: COLORS[i % COLORS.length],
        grouped: false,
        barPercentage: 0.8
      };
    });
    datasets.push({
      label: "on legal hold (no end date)",
      data: shown.map(function (s) { return s.hold ? [ms(s.time), end + pad] : null; }),
      backgroundColor: "rgba(180, 35, 24, 0.35)",
      grouped: false,
      barPercentage: 0.35
    });
    datasets.push({
      label: "never locked",
      data: shown.map(function (s) { return s.lock ? null : [ms(s.time), ms(s.time) + mark]; }),
      backgroundColor: "#667085",
      grouped: false,
      barPercentage: 0.8
    });
    var c = chartBox("timeline-chart", Math.max(180, 22 * shown.length + 90), "Timeline of " + shown.length + " snapshots and their locks");
    var box = el("div", {}, [c.box]);
    if (snaps.length > shown.length) {
      box.appendChild(el("p", { class: "explain", text: "The newest " + shown.length + " of " + snaps.length + " snapshots are drawn; the table below lists them all." }));
    }
    var config = {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: {
        indexAxis: "y",
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { type: "linear", min: start - pad, max: end + pad, ticks: { callback: dateTicks, maxTicksLimit: 10 }, title: { display: true, text: "date (UTC)" } },
          y: { ticks: { autoSkip: false, font: { family: "monospace", size: 11 } } }
        },
        plugins: {
          legend: { position: "top" },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                var s = shown[ctx.dataIndex];
                if (ctx.dataset.label.indexOf("hold") >= 0) return "legal hold: " + (s.hold.reason || "");
                return "made " + time(s.time) + ", " + lockText(s.lock);
              }
            }
          }
        }
      },
      plugins: [nowLine]
    };
    return { node: box, canvas: c.canvas, config: config };
  }

  function horizonChart(h) {
    var points = h.buckets.map(function (b) { return ms(b.date); });
    function series(field) { return h.buckets.map(function (b, i) { return { x: points[i], y: b[field] }; }); }
    var c = chartBox("horizon-chart", 320, "Snapshots and bytes protected at each future date");
    var config = {
      type: "line",
      data: {
        datasets: [
          { label: "snapshots protected (lock or hold)", data: series("snapshots"), stepped: true, borderColor: "#2e6fdb", backgroundColor: "rgba(46,111,219,0.15)", fill: true, yAxisID: "y" },
          { label: "snapshots locked", data: series("locked"), stepped: true, borderColor: "#0e9384", yAxisID: "y" },
          { label: "bytes protected", data: series("bytes"), stepped: true, borderColor: "#7a5af8", borderDash: [6, 3], yAxisID: "bytes" }
        ]
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: true,
        scales: {
          x: { type: "linear", ticks: { callback: dateTicks, maxTicksLimit: 12 }, title: { display: true, text: "date (UTC)" } },
          y: { beginAtZero: true, title: { display: true, text: "snapshots" }, ticks: { precision: 0 } },
          bytes: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: "bytes" }, ticks: { callback: function (v) { return bytes(v); } } }
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              title: function (items) { return items.length ? time(h.buckets[items[0].dataIndex].date) : ""; },
              label: function (ctx) {
                var v = ctx.parsed.y;
                return ctx.dataset.label + ": " + (ctx.dataset.yAxisID === "bytes" ? bytes(v) : v);
              }
            }
          }
        }
      }
    };
    return { node: c.box, canvas: c.canvas, config: config };
  }

  function draw(name, chart) {
    if (typeof Chart === "undefined") {
      chart.canvas.parentNode.appendChild(el("p", { class: "empty", text: "The charting library did not load." }));
      return;
    }
    window.amberReport.charts[name] = new Chart(chart.canvas, chart.config);
  }

  // -- the sections ----------------------------------------------------------------------------

  function header() {
    var r = data.repository;
    document.title = "amber compliance report — " + r.id;
    var h = el("header", {}, [
      el("h1", { text: "Backup compliance report" }),
      el("p", { text: "Repository " + r.id + " (" + r.location + ")" }),
      el("p", { text: "Generated " + time(data.report.generated) + " by " + data.report.program + ", read with a " + data.access.role + " key" })
    ]);
    document.body.insertBefore(h, document.body.firstChild);
  }

  function glance() {
    var h = data.lock_horizon, c = data.checks.last, d = data.drills.last;
    return facts([
      ["Snapshots", data.snapshots.length + " on " + data.hosts.length + " host(s)"],
      ["Protected now", h.locked_now + " locked, " + h.held_now + " on legal hold, " + h.unprotected_now + " unprotected"],
      ["Last check", c ? time(c.time) + " — " + (c.ok ? "passed" : "FAILED") : "never"],
      ["Last restore drill", d ? time(d.time) + " — " + (d.ok ? "passed" : "FAILED") : "never"],
      ["Ransomware alarms", data.anomalies.total],
      ["Overrides used", data.overrides.filter(function (o) { return o.kind !== "clock-jump"; }).length]
    ]);
  }

  function findingsSection() {
    var items = data.findings.map(function (f) {
      return el("li", { "data-code": f.code, "data-severity": f.severity }, [badge(f.severity, f.severity), el("span", { class: "message", text: f.message })]);
    });
    section("findings", "What to look at",
      "The points below are drawn from the facts further down. Alerts mean something failed or disagrees with the record; warnings mean a safeguard was overridden or is missing; notices are worth knowing.",
      [glance(), items.length ? el("ul", { class: "findings" }, items) : el("p", { text: "Nothing to report: every check passed." })]);
    if (data.access.left_out.length) {
      root.lastChild.appendChild(el("h3", { text: "Left out of this report" }));
      root.lastChild.appendChild(el("ul", { id: "left-out" }, data.access.left_out.map(function (t) { return el("li", { text: t }); })));
    }
  }

  function repositorySection() {
    var r = data.repository, s = r.settings;
    section("repository", "The repository",
      "Where the backups are kept and the rules it enforces. A lock forbids deleting a snapshot (and the data it needs) until its date; the storage refuses the deletion, not only amber.",
      [facts([
        ["Repository id", r.id],
        ["Storage", r.location],
        ["Format", r.format],
        ["Created", stamp(r.created)],
        ["Default lock on every new snapshot", retentionText(s.default_retention)],
        ["Shortest lock allowed", s.min_retention || "none"],
        ["Lock schedule (lock policy)", policyText(s.lock_policy)],
        ["Settings version", s.version],
        ["Redundancy (parity)", r.parity_percent ? r.parity_percent + "% of each pack" : "none"]
      ])]);
  }

  function snapshotsSection() {
    var t = data.snapshots.length ? timeline(data.snapshots) : null;
    var hosts = table("hosts-table", [
      { key: "hostname", title: "Host", value: function (h) { return h.hostname; } },
      { key: "snapshots", title: "Snapshots", num: true, value: function (h) { return h.snapshots; } },
      { key: "first", title: "First", value: function (h) { return stamp(h.first); } },
      { key: "last", title: "Newest", value: function (h) { return stamp(h.last); } },
      { key: "locked", title: "Locked now", num: true, value: function (h) { return h.locked; } },
      { key: "held", title: "On hold", num: true, value: function (h) { return h.held; } },
      { key: "unprotected", title: "Unprotected", num: true, value: function (h) { return h.unprotected; } }
    ], data.hosts, function (h) { return h.hostname; });
    var snaps = table("snapshots-table", [
      { key: "id", title: "Snapshot", value: function (s) { return el("span", { class: "id", title: s.id, text: s.short_id }); } },
      { key: "time", title: "Made", value: function (s) { return stamp(s.time); } },
      { key: "hostname", title: "Host", value: function (s) { return s.hostname; } },
      { key: "tags", title: "Tags", value: function (s) { return s.tags.join(", "); } },
      { key: "paths", title: "Paths", value: function (s) { return s.paths.join(", "); } },
      { key: "files", title: "Files", num: true, value: function (s) { return s.files; } },
      { key: "bytes", title: "Size", num: true, value: function (s) { return bytes(s.bytes); } },
      { key: "lock-mode", title: "Lock", value: function (s) { return s.lock ? s.lock.mode : "none"; } },
      { key: "until", title: "Locked until", value: function (s) { return s.lock ? stamp(s.lock.until, s.lock.active ? "" : " (expired)") : "—"; } },
      { key: "tier", title: "Schedule tier", value: function (s) { return s.lock_tier; } },
      { key: "hold", title: "Legal hold", value: function (s) { return s.hold ? s.hold.reason : ""; } },
      { key: "overrides", title: "Overrides", value: function (s) { return s.overrides.join("; "); } }
    ], data.snapshots.slice().reverse(), function (s) { return s.id; });
    section("snapshots", "Snapshots and their locks",
      "A snapshot is one backup of one host at one time. The chart draws each snapshot as a bar from when it was made to when its lock ends; a red band marks a legal hold, which has no end date. The dashed line is now. The table lists every snapshot, newest first.",
      [t ? t.node : el("p", { class: "empty", text: "No snapshots." }), el("h3", { text: "Hosts" }), hosts, el("h3", { text: "Every snapshot" }), snaps]);
    if (t) draw("timeline", t);
  }

  function horizonSection() {
    var h = data.lock_horizon;
    var c = horizonChart(h);
    var rows = h.buckets.filter(function (b, i) { return i === 0 || b.locks_ending || i === h.buckets.length - 1; });
    section("lock-horizon", "Lock horizon: what stays protected, until when",
      "How many snapshots (and how many bytes of backed-up files) remain protected at each future date, if nothing new is locked. Snapshots on legal hold stay protected until the hold is released. Sizes add up each snapshot's files, before deduplication.",
      [facts([
        ["Locked now", h.locked_now],
        ["On legal hold now", h.held_now],
        ["Not protected now", h.unprotected_now],
        ["Latest lock ends", h.latest_expiry ? stamp(h.latest_expiry) : "no lock"]
      ]), c.node, el("h3", { text: "Dates where protection changes (one row per " + h.granularity + " in which a lock ends)" }),
      table("horizon-table", [
        { key: "date", title: "From", value: function (b) { return stamp(b.date); } },
        { key: "snapshots", title: "Snapshots protected", num: true, value: function (b) { return b.snapshots; } },
        { key: "locked", title: "of them locked", num: true, value: function (b) { return b.locked; } },
        { key: "bytes", title: "Bytes protected", num: true, value: function (b) { return bytes(b.bytes); } },
        { key: "locks_ending", title: "Locks ending in this " + h.granularity, num: true, value: function (b) { return b.locks_ending; } }
      ], rows, function (b) { return b.date; })]);
    draw("horizon", c);
  }

  function holdsSection() {
    section("holds", "Legal holds",
      "A legal hold keeps a snapshot, whatever its lock says, until someone with a full key releases it; placing and releasing one are recorded in the audit log.",
      [table("holds-table", [
        { key: "snapshot", title: "Snapshot", value: function (h) { return el("span", { class: "id", title: h.snapshot, text: h.snapshot.slice(0, 8) }); } },
        { key: "hostname", title: "Host", value: function (h) { return h.hostname; } },
        { key: "since", title: "Held since", value: function (h) { return stamp(h.since); } },
        { key: "reason", title: "Reason", value: function (h) { return h.reason; } }
      ], data.holds, function (h) { return h.snapshot; })]);
  }

  function checksSection() {
    var c = data.checks;
    section("checks", "Integrity checks",
      "`amber check` verifies that every snapshot's structure is intact; with --read-data it also reads the stored data back and verifies every byte. " + c.total + " check(s) are recorded; the newest are listed.",
      [table("checks-table", [
        { key: "time", title: "When", value: function (r) { return stamp(r.time); } },
        { key: "read_data", title: "Data read back", value: function (r) { return r.read_data ? (r.read_subset ? "subset " + r.read_subset : "yes") : "no"; } },
        { key: "result", title: "Result", value: function (r) { return verdict(r.ok); } },
        { key: "errors", title: "Errors", num: true, value: function (r) { return r.errors; } },
        { key: "by", title: "By", value: function (r) { return r.by; } }
      ], c.recent, function (r) { return r.event; })]);
  }

  function drillsSection() {
    var d = data.drills;
    section("drills", "Restore drills",
      "A drill restores a snapshot (or a fixed sample of its files) into a scratch folder and verifies every byte. Its speed gives the estimated time to restore the whole snapshot (RTO, recovery time objective). " + d.total + " drill(s) are recorded.",
      [table("drills-table", [
        { key: "time", title: "When", value: function (r) { return stamp(r.time); } },
        { key: "snapshot", title: "Snapshot", value: function (r) { return r.snapshot ? r.snapshot.slice(0, 8) : ""; } },
        { key: "sample", title: "Sample", value: function (r) { return r.sample; } },
        { key: "result", title: "Result", value: function (r) { return verdict(r.ok); } },
        { key: "verified", title: "Files verified", num: true, value: function (r) { return r.verified; } },
        { key: "throughput", title: "Speed", num: true, value: function (r) { return r.throughput === null ? "" : bytes(r.throughput) + "/s"; } },
        { key: "rto", title: "Full restore estimate (RTO)", num: true, value: function (r) { return seconds(r.rto_seconds); } },
        { key: "total", title: "Snapshot size", num: true, value: function (r) { return bytes(r.total_bytes); } }
      ], d.recent, function (r) { return r.event; })]);
  }

  function anomaliesSection() {
    var a = data.anomalies;
    section("anomalies", "Ransomware alarms",
      "Each backup is compared with the one before it on the same host: a mass of changed, deleted or renamed files, data that suddenly stopped compressing (the sign of encryption) or ransom notes raise an alarm, and the previous, good snapshot is placed on legal hold. " + a.total + " alarm(s) are recorded.",
      [table("anomalies-table", [
        { key: "time", title: "When", value: function (r) { return stamp(r.time); } },
        { key: "snapshot", title: "Backup", value: function (r) { return r.snapshot ? String(r.snapshot).slice(0, 8) : ""; } },
        { key: "reasons", title: "Why", value: function (r) { return r.reasons.join("; "); } },
        { key: "signals", title: "Signals measured", value: function (r) { return Object.keys(r.signals).map(function (k) { return k + " " + r.signals[k]; }).join(", "); } },
        { key: "held", title: "Held", value: function (r) { return r.held ? String(r.held).slice(0, 8) : "no"; } }
      ], a.recent, function (r) { return r.event; })]);
  }

  function overridesSection() {
    section("overrides", "Overrides: --bypass-governance and --trust-clock",
      "--bypass-governance lets an administrator shorten or remove a governance-mode lock; --trust-clock lets deletions go ahead after the computer's clock jumped. Both are legitimate in rare cases and always recorded. Changes made while the clock had jumped are listed too.",
      [table("overrides-table", [
        { key: "time", title: "When", value: function (o) { return stamp(o.time); } },
        { key: "kind", title: "What", value: function (o) { return o.kind === "clock-jump" ? "clock jump" : "--" + o.kind; } },
        { key: "event_type", title: "Command", value: function (o) { return o.event_type; } },
        { key: "snapshot", title: "Snapshot", value: function (o) { return o.snapshot ? o.snapshot.slice(0, 8) : ""; } },
        { key: "description", title: "Details", value: function (o) { return o.description; } }
      ], data.overrides, function (o) { return o.kind + ":" + o.event; })]);
  }

  function settingsSection() {
    section("settings-changes", "Settings over time",
      "The rules the repository was created with (version 0) and every later change. Settings may only be made stricter: the minimum lock only rises and a lock schedule only lengthens.",
      [table("settings-table", [
        { key: "version", title: "Version", num: true, value: function (r) { return r.version; } },
        { key: "time", title: "When", value: function (r) { return stamp(r.time); } },
        { key: "default_retention", title: "Default lock", value: function (r) { return retentionText(r.default_retention); } },
        { key: "min_retention", title: "Shortest lock", value: function (r) { return r.min_retention || "none"; } },
        { key: "lock_policy", title: "Lock schedule", value: function (r) { return policyText(r.lock_policy); } },
        { key: "by", title: "By", value: function (r) { return r.by; } }
      ], data.settings_changes, function (r) { return r.event; })]);
  }

  function auditSection() {
    var a = data.audit_log, v = a.verified || {};
    section("audit-log", "The audit log",
      "Every change and every check is recorded as a signed event in an append-only log. Its checkpoints (signed summaries of the whole log) are also kept by witnesses outside the repository, so a rewritten or rolled-back history is detected.",
      [facts([
        ["Events", a.events],
        ["First event", stamp(a.first_event)],
        ["Newest event", stamp(a.last_event)],
        ["Newest checkpoint", a.checkpoint ? a.checkpoint.size + " events, up to " + time(a.checkpoint.time) : "none"],
        ["Verification now", verdict(v.ok)],
        ["Trust resets", a.trust_resets.length]
      ]),
      el("h3", { text: "Witnesses" }),
      table("witnesses-table", [
        { key: "name", title: "Witness", value: function (w) { return w.name; } },
        { key: "url", title: "Where", value: function (w) { return w.url; } },
        { key: "newest_size", title: "Newest checkpoint it holds (events)", num: true, value: function (w) { return w.newest_size; } },
        { key: "cosigned", title: "Last cosigned for this client", value: function (w) { return w.cosigned ? w.cosigned.size + " events at " + time(w.cosigned.time) : ""; } },
        { key: "ok", title: "Agrees with the log", value: function (w) { return verdict(w.ok); } }
      ], a.witnesses, function (w) { return w.name; }),
      el("h3", { text: "Events by type" }),
      table("event-types-table", [
        { key: "type", title: "Type", value: function (r) { return r[0]; } },
        { key: "count", title: "Events", num: true, value: function (r) { return r[1]; } }
      ], Object.keys(a.by_type).map(function (k) { return [k, a.by_type[k]]; }), function (r) { return r[0]; }),
      v.errors && v.errors.length ? el("ul", { id: "log-errors" }, v.errors.map(function (e) { return el("li", { text: e }); })) : null]);
  }

  function glossary() {
    var words = [
      ["Snapshot", "One backup: the files of some paths of one host at one moment. Deduplicated, so unchanged data is stored once."],
      ["Lock (retention)", "A date before which a snapshot cannot be deleted. In compliance mode nobody can shorten it; in governance mode an administrator can, with --bypass-governance, and that is recorded."],
      ["Lock schedule tier", "With a lock policy, the first snapshot of each day, week, month or year is locked for that tier's length; the tier named is the longest it filled."],
      ["Legal hold", "Keeps a snapshot indefinitely, regardless of its lock, until released."],
      ["Check", "Verification of the repository's structure; with --read-data, of every stored byte."],
      ["Drill, RTO", "A test restore with every byte verified; RTO is the estimated time to restore the whole snapshot at the speed measured."],
      ["Audit log, checkpoint, witness", "The signed, append-only record of every change; a checkpoint is a signed summary of it; a witness keeps checkpoints elsewhere."]
    ];
    var dl = el("dl", { class: "glossary" });
    words.forEach(function (w) { dl.appendChild(el("dt", { text: w[0] })); dl.appendChild(el("dd", { text: w[1] })); });
    section("glossary", "What the words mean", "For readers new to amber.", [dl]);
  }

  header();
  findingsSection();
  repositorySection();
  snapshotsSection();
  horizonSection();
  holdsSection();
  checksSection();
  drillsSection();
  anomaliesSection();
  overridesSection();
  settingsSection();
  auditSection();
  glossary();
  root.appendChild(el("footer", { text: "The figures on this page are exactly those of `amber report --json`, embedded in the page as the script element amber-report-data." }));
  window.amberReport.rendered = true;
  document.body.setAttribute("data-rendered", "true");
})();
