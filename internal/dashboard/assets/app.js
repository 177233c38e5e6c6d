// warden dashboard: live figures on the now page and bar charts on the
// reach page. No framework, no build step; loaded from 'self' only.
"use strict";
(function () {
  var colours = ["#2b6cb0", "#c53030", "#b7791f", "#2f855a"];

  function fit(canvas) {
    var r = window.devicePixelRatio || 1;
    var w = canvas.clientWidth || canvas.width;
    var h = canvas.clientHeight || canvas.height;
    canvas.width = Math.round(w * r);
    canvas.height = Math.round(h * r);
    var g = canvas.getContext("2d");
    g.setTransform(r, 0, 0, r, 0, 0);
    g.clearRect(0, 0, w, h);
    g.font = "12px system-ui, sans-serif";
    return { g: g, w: w, h: h };
  }

  function bars(canvas, c) {
    var f = fit(canvas), g = f.g, n = c.values.length;
    var top = Math.max.apply(null, c.values.concat([1]));
    var slot = (f.w - 10) / Math.max(n, 1);
    for (var i = 0; i < n; i++) {
      var bh = (f.h - 34) * c.values[i] / top;
      g.fillStyle = colours[i % colours.length];
      g.fillRect(5 + i * slot + slot * 0.15, f.h - 18 - bh, slot * 0.7, bh);
      g.fillStyle = "#222";
      g.textAlign = "center";
      g.fillText(String(c.values[i]), 5 + i * slot + slot / 2, f.h - 22 - bh);
      g.fillText(c.labels[i], 5 + i * slot + slot / 2, f.h - 4);
    }
  }

  // lines draws series (arrays of [t, y]) on one time axis.
  function lines(canvas, series) {
    var f = fit(canvas), g = f.g;
    var t0 = Infinity, t1 = -Infinity, top = 1;
    series.forEach(function (s) {
      s.forEach(function (p) { t0 = Math.min(t0, p[0]); t1 = Math.max(t1, p[0]); top = Math.max(top, p[1]); });
    });
    g.strokeStyle = "#ddd";
    g.beginPath(); g.moveTo(30, f.h - 14); g.lineTo(f.w, f.h - 14); g.stroke();
    g.fillStyle = "#555";
    g.fillText(top.toFixed(top < 10 ? 1 : 0) + "/s", 2, 12);
    if (!(t1 > t0)) { g.fillText("collecting samples…", 40, f.h / 2); return; }
    g.fillText(Math.round((t1 - t0) / 60000) + " min", f.w - 50, f.h - 2);
    series.forEach(function (s, k) {
      g.strokeStyle = colours[k % colours.length];
      g.lineWidth = 2;
      g.beginPath();
      s.forEach(function (p, i) {
        var x = 30 + (f.w - 32) * (p[0] - t0) / (t1 - t0), y = f.h - 14 - (f.h - 28) * p[1] / top;
        if (i === 0) { g.moveTo(x, y); } else { g.lineTo(x, y); }
      });
      g.stroke();
    });
  }

  function sum(m) { var s = 0; for (var k in m) { s += m[k]; } return s; }

  function rates(hist, pick) {
    var out = [];
    for (var i = 1; i < hist.length; i++) {
      var dt = (hist[i].t - hist[i - 1].t) / 1000;
      if (dt > 0) { out.push([hist[i].t, Math.max(0, pick(hist[i]) - pick(hist[i - 1])) / dt]); }
    }
    return out;
  }

  function text(id, v) { var e = document.getElementById(id); if (e) { e.textContent = v; } }

  function table(id, m) {
    var body = document.querySelector("#" + id + " tbody");
    if (!body) { return; }
    var keys = Object.keys(m).sort(function (a, b) { return m[b] - m[a] || (a < b ? -1 : 1); });
    body.textContent = "";
    keys.forEach(function (k) {
      var tr = document.createElement("tr"), a = document.createElement("td"), b = document.createElement("td");
      a.textContent = k.trim(); b.textContent = String(m[k]);
      tr.appendChild(a); tr.appendChild(b); body.appendChild(tr);
    });
    if (keys.length === 0) {
      var tr = document.createElement("tr"), td = document.createElement("td");
      td.colSpan = 2; td.className = "muted"; td.textContent = "none";
      tr.appendChild(td); body.appendChild(tr);
    }
  }

  function poll() {
    fetch("/api/now", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/login"); throw new Error("signed out"); }
        return r.json();
      })
      .then(function (d) {
        var n = d.now, hist = (d.history || []).concat([n]);
        text("n-requests", String(n.requests));
        text("n-inflight", String(n.in_flight));
        text("n-banned", d.banned < 0 ? "unknown" : String(d.banned)); // -1: the store did not answer
        text("n-store", d.store);
        text("n-storeerr", String(n.store_errors));
        table("t-refusals", n.refusals);
        table("t-masks", n.masks);
        table("t-bans", n.bans);
        lines(document.getElementById("c-requests"), [rates(hist, function (s) { return s.requests; })]);
        lines(document.getElementById("c-stopped"), [
          rates(hist, function (s) { return sum(s.refusals); }),
          rates(hist, function (s) { return sum(s.masks); }),
          rates(hist, function (s) { return sum(s.bans); })
        ]);
        text("live", "updated " + new Date(n.t).toLocaleTimeString());
      })
      .catch(function () { text("live", "not updating: the gateway did not answer"); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("canvas.bars"), function (c) {
      bars(c, JSON.parse(c.getAttribute("data-chart")));
    });
    if (document.body.getAttribute("data-page") === "now") {
      poll();
      window.setInterval(poll, 2000);
    }
  });
})();
