// equipmon dashboard: live refresh of each page's data, and small SVG charts. No libraries.
"use strict";

(function () {
  // The page's words for what this script writes (the server puts them on <html data-i18n>).
  var WORDS = {};
  try { WORDS = JSON.parse(document.documentElement.getAttribute("data-i18n") || "{}"); } catch (e) { WORDS = {}; }
  function tr(text) { return WORDS[text] || text; }

  var POLL_MS = 4000; // small fragments every few seconds: simple, and robust behind proxies

  // ---- Live updates: re-fetch the page's #live fragment and swap it in when it changed. ----
  function busy(region) {
    // Never yank a form from under someone typing or choosing: wait until they are done.
    var active = document.activeElement;
    if (active && region.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) return true;
    if (region.querySelector("details[open]")) return true;
    // Typed-in but not yet sent: keep it.
    var fields = region.querySelectorAll("input:not([type=hidden]), textarea, select");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.type === "radio" || f.type === "checkbox") { if (f.checked !== f.defaultChecked) return true; }
      else if (f.tagName === "SELECT") { if (f.selectedIndex >= 0 && !f.options[f.selectedIndex].defaultSelected) return true; }
      else if (f.value !== f.defaultValue) return true;
    }
    return false;
  }

  function startLive() {
    // Regions are elements with data-live and an id; the fragment carries the same ids. A page
    // with one region may get a bare fragment, which then is that region's content.
    var regions = Array.prototype.slice.call(document.querySelectorAll("[data-live][id]"));
    var status = document.getElementById("live-state");
    if (!regions.length) return;
    var last = {};
    var etag = null;
    var failures = 0;
    function setStatus(ok) {
      if (!status) return;
      status.classList.toggle("offline", !ok);
      var now = new Date();
      status.textContent = ok
        ? tr("Live · updated") + " " + now.toLocaleTimeString(document.documentElement.lang || [], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
        : tr("Connection lost · retrying");
    }
    function apply(html) {
      var holder = document.createElement("template");
      holder.innerHTML = html;
      regions.forEach(function (region) {
        var match = holder.content.getElementById(region.id);
        var next = match ? match.innerHTML : (regions.length === 1 ? html : null);
        if (next === null || next === last[region.id] || busy(region)) return;
        if (last[region.id] !== undefined) region.innerHTML = next;
        last[region.id] = next;
      });
    }
    function tick() {
      if (document.visibilityState === "hidden") return schedule();
      var headers = { "X-Fragment": "1" };
      if (etag) headers["If-None-Match"] = etag; // 304 when nothing changed: no render, no bytes
      fetch(location.pathname + location.search, {
        headers: headers, credentials: "same-origin", cache: "no-store"
      }).then(function (response) {
        if (response.redirected && response.url.indexOf("/ui/login") !== -1) {
          location.assign(response.url); // the session ended
          return null;
        }
        if (response.status === 304) return "";
        if (!response.ok) throw new Error("HTTP " + response.status);
        etag = response.headers.get("ETag");
        return response.text();
      }).then(function (html) {
        if (html === null) return;
        failures = 0;
        setStatus(true);
        if (html !== "") apply(html);
        schedule();
      }).catch(function () {
        failures += 1;
        setStatus(false);
        schedule();
      });
    }
    function schedule() {
      // Back off while the server is unreachable, up to 30 s.
      setTimeout(tick, Math.min(POLL_MS * Math.pow(2, failures), 30000));
    }
    tick();
  }

  // ---- Relative times ("3 min ago") age in the browser between fragment updates. ----
  function ageText(seconds) {
    var s = Math.abs(seconds);
    var words = s < 90 ? Math.round(s) + " s" : s < 5400 ? Math.round(s / 60) + " min"
      : s < 172800 ? Math.round(s / 3600) + " h" : Math.round(s / 86400) + " d";
    return (seconds > 0 ? tr("in {age}") : tr("{age} ago")).replace("{age}", words);
  }
  function tickTimes() {
    var now = Date.now();
    Array.prototype.forEach.call(document.querySelectorAll("time[data-rel]"), function (node) {
      var at = Date.parse(node.getAttribute("datetime"));
      if (!isNaN(at)) node.textContent = ageText((at - now) / 1000);
    });
  }

  // ---- Charts: one small line chart per sensor, the anomaly onset marked. ----
  var SVG = "http://www.w3.org/2000/svg";
  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    for (var key in attrs) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function fmt(v) {
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  }
  // Axis times in the site's zone (data-tz on the chart; UTC without), with the date when
  // the window spans days.
  function hhmm(ms, tz, days) {
    var opts = { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: tz || "UTC" };
    if (days) { opts.day = "numeric"; opts.month = "numeric"; }
    try {
      return new Intl.DateTimeFormat(document.documentElement.lang || "en", opts).format(new Date(ms));
    } catch (e) {
      var d = new Date(ms);
      return String(d.getUTCHours()).padStart(2, "0") + ":" + String(d.getUTCMinutes()).padStart(2, "0");
    }
  }

  function drawSeries(box, name, unit, times, values, markMs) {
    // Drawn at the box's own width, so text stays at its CSS size on any screen.
    var W = Math.max(280, Math.round(box.clientWidth || 640)), H = 118, L = 46, R = 8, T = 10, B = 20;
    var pts = [];
    for (var i = 0; i < times.length; i++) if (values[i] !== null) pts.push([times[i], values[i]]);
    var wrap = document.createElement("div");
    wrap.className = "series";
    var title = document.createElement("h3");
    title.textContent = name;
    var latest = document.createElement("span");
    latest.textContent = pts.length ? tr("latest") + " " + fmt(pts[pts.length - 1][1]) + (unit ? " " + unit : "") : tr("no data");
    title.appendChild(latest);
    wrap.appendChild(title);
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": name + " · " + tr("over time") + (pts.length ? ", " + tr("latest") + " " + fmt(pts[pts.length - 1][1]) : "") });
    wrap.appendChild(svg);
    box.appendChild(wrap);
    if (!pts.length) return;
    var t0 = times[0], t1 = times[times.length - 1];
    if (markMs !== null) { t0 = Math.min(t0, markMs); t1 = Math.max(t1, markMs); }
    var lo = Infinity, hi = -Infinity;
    pts.forEach(function (p) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); });
    if (hi === lo) { hi += 1; lo -= 1; }
    var pad = (hi - lo) * 0.08; hi += pad; lo -= pad;
    function x(t) { return L + (W - L - R) * (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)); }
    function y(v) { return T + (H - T - B) * (1 - (v - lo) / (hi - lo)); }
    [lo + pad, (lo + hi) / 2, hi - pad].forEach(function (v) {
      el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), "class": "grid" }, svg);
      el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", "class": "axis" }, svg).textContent = fmt(v);
    });
    for (var k = 0; k <= 4; k++) {
      var t = t0 + (t1 - t0) * k / 4;
      el("text", { x: x(t), y: H - 4, "text-anchor": k === 0 ? "start" : k === 4 ? "end" : "middle", "class": "axis" }, svg)
        .textContent = hhmm(t / 1e6, box.getAttribute("data-tz"), (t1 - t0) > 36 * 3600e9);
    }
    var d = pts.map(function (p, j) { return (j ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1); }).join(" ");
    el("path", { d: d + " L" + x(pts[pts.length - 1][0]).toFixed(1) + " " + (H - B) + " L" + x(pts[0][0]).toFixed(1) + " " + (H - B) + " Z", "class": "area" }, svg);
    el("path", { d: d, "class": "line" }, svg);
    if (markMs !== null) {
      var mx = x(markMs);
      el("line", { x1: mx, x2: mx, y1: T, y2: H - B, "class": "mark" }, svg);
      el("text", { x: mx + 4, y: T + 10, "class": "mark-label" }, svg).textContent = tr("alert");
    }
  }

  function drawChart(box) {
    var url = box.getAttribute("data-chart");
    var mark = box.getAttribute("data-mark");
    var units = {};
    try { units = JSON.parse(box.getAttribute("data-units") || "{}"); } catch (e) { units = {}; }
    var markNs = mark ? Date.parse(mark) * 1e6 : null;
    fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (response) {
      if (!response.ok) throw new Error(response.status === 503 ? tr("The readings store is unavailable.") : tr("Readings could not be loaded."));
      return response.json();
    }).then(function (data) {
      box.textContent = "";
      var names = Object.keys(data.sensors || {});
      if (!names.length || !data.times_ns.length) {
        box.innerHTML = '<p class="muted">' + tr("No readings in this window.") + '</p>';
        return;
      }
      names.forEach(function (name) {
        drawSeries(box, name, units[name] || "", data.times_ns, data.sensors[name], markNs);
      });
      box.setAttribute("data-ready", String(names.length));
    }).catch(function (error) {
      box.innerHTML = "";
      var p = document.createElement("p");
      p.className = "muted";
      p.textContent = error.message;
      box.appendChild(p);
      box.setAttribute("data-ready", "0");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    startLive();
    tickTimes();
    setInterval(tickTimes, 5000);
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), drawChart);
    // Zoom buttons (the asset page): redraw the target chart over another window of days.
    Array.prototype.forEach.call(document.querySelectorAll("[data-zoom]"), function (button) {
      button.addEventListener("click", function () {
        var box = document.getElementById(button.getAttribute("data-target"));
        if (!box) return;
        Array.prototype.forEach.call(button.parentNode.querySelectorAll("[data-zoom]"), function (b) {
          b.setAttribute("aria-pressed", String(b === button));
        });
        box.setAttribute("data-chart", button.getAttribute("data-zoom"));
        box.removeAttribute("data-ready");
        drawChart(box);
      });
    });
  });
})();
