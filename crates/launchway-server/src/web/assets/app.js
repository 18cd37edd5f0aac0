// Launchway web UI: what JavaScript adds to the server-rendered pages —
// live logs and statuses on a run's page, and log search. Every page works
// without it.
"use strict";

(function () {
  // --- log search ------------------------------------------------------
  document.addEventListener("input", function (e) {
    var input = e.target;
    if (!input.classList || !input.classList.contains("log-search")) return;
    var pre = document.getElementById("log-" + input.dataset.for);
    if (!pre) return;
    var want = input.value.toLowerCase();
    pre.querySelectorAll(".line").forEach(function (line) {
      var hit = !want || line.textContent.toLowerCase().indexOf(want) >= 0;
      line.classList.toggle("hidden", !hit);
      if (hit && want) {
        for (var d = line.parentElement; d && d !== pre; d = d.parentElement) {
          if (d.tagName === "DETAILS") d.open = true;
        }
      }
    });
  });

  // --- ANSI colours, as the server renders them ------------------------
  function ansiSpans(text) {
    var out = [], style = {}, cur = "";
    function classes() {
      var c = [];
      if (style.b) c.push("b");
      if (style.i) c.push("i");
      if (style.u) c.push("u");
      if (style.fg !== undefined) c.push("f" + style.fg);
      if (style.bg !== undefined) c.push("g" + style.bg);
      return c.join(" ");
    }
    function flush() { if (cur) { out.push([classes(), cur]); cur = ""; } }
    function apply(params) {
      if (params === "") { style = {}; return; }
      var codes = params.split(";").map(function (p) { return parseInt(p, 10) || 0; });
      for (var k = 0; k < codes.length; k++) {
        var c = codes[k];
        if (c === 0) style = {};
        else if (c === 1) style.b = true;
        else if (c === 3) style.i = true;
        else if (c === 4) style.u = true;
        else if (c === 22) style.b = false;
        else if (c === 23) style.i = false;
        else if (c === 24) style.u = false;
        else if (c >= 30 && c <= 37) style.fg = c - 30;
        else if (c >= 90 && c <= 97) style.fg = c - 82;
        else if (c === 39) delete style.fg;
        else if (c >= 40 && c <= 47) style.bg = c - 40;
        else if (c >= 100 && c <= 107) style.bg = c - 92;
        else if (c === 49) delete style.bg;
        else if (c === 38 || c === 48) {
          var mode = codes[++k];
          if (mode === 5) {
            var n = codes[++k];
            var v = n < 16 ? n : undefined;
            if (c === 38) style.fg = v; else style.bg = v;
          } else if (mode === 2) k += 3;
        }
      }
    }
    for (var i = 0; i < text.length; i++) {
      var ch = text[i];
      if (ch !== "\u001b") {
        if (ch >= " " || ch === "\t") cur += ch;
        continue;
      }
      var next = text[i + 1];
      if (next === "[") {
        var j = i + 2, params = "";
        while (j < text.length && !(text[j] >= "@" && text[j] <= "~")) params += text[j++];
        if (text[j] === "m") { flush(); apply(params); }
        i = j;
      } else if (next === "]") {
        var e = i + 2;
        while (e < text.length && text[e] !== "\u0007" && !(text[e] === "\u001b" && text[e + 1] === "\\")) e++;
        i = text[e] === "\u001b" ? e + 1 : e;
      } else {
        i++;
      }
    }
    flush();
    return out;
  }

  var MARKERS = [["##[command]", "cmd"], ["##[error]", "error"], ["##[warning]", "warning"],
    ["##[notice]", "notice"], ["##[debug]", "debug"], ["##[group]", "group"], ["##[endgroup]", "endgroup"]];

  // A group's title line sits in its <summary>: no link inside it.
  function lineElement(prefix, number, kind, rest) {
    var line = document.createElement("span");
    line.className = "line" + (kind ? " " + kind : "");
    line.id = prefix + "-L" + number;
    var a = document.createElement(kind === "group" ? "span" : "a");
    a.className = "ln";
    if (kind !== "group") {
      a.href = "#" + line.id;
      a.tabIndex = -1;
    }
    a.setAttribute("aria-hidden", "true");
    a.textContent = number;
    line.appendChild(a);
    var t = document.createElement("span");
    t.className = "text";
    ansiSpans(rest).forEach(function (s) {
      if (!s[0]) { t.appendChild(document.createTextNode(s[1])); return; }
      var span = document.createElement("span");
      span.className = s[0];
      span.textContent = s[1];
      t.appendChild(span);
    });
    line.appendChild(t);
    return line;
  }

  // One job's log as it streams: numbered lines, groups folded.
  function LiveLog(pre, prefix) {
    this.pre = pre;
    this.prefix = prefix;
    this.n = 0;
    this.stack = [pre];
    pre.textContent = "";
  }
  LiveLog.prototype.add = function (raw) {
    var kind = "", rest = raw;
    for (var m = 0; m < MARKERS.length; m++) {
      if (raw.indexOf(MARKERS[m][0]) === 0) { kind = MARKERS[m][1]; rest = raw.slice(MARKERS[m][0].length); break; }
    }
    this.n += 1;
    var top = this.stack[this.stack.length - 1];
    var follow = this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 24;
    if (kind === "group") {
      var d = document.createElement("details");
      d.className = "group";
      d.open = true;
      var s = document.createElement("summary");
      s.appendChild(lineElement(this.prefix, this.n, kind, rest));
      d.appendChild(s);
      top.appendChild(d);
      this.stack.push(d);
    } else if (kind === "endgroup") {
      if (this.stack.length > 1) {
        var done = this.stack.pop();
        done.open = false;
      }
    } else {
      top.appendChild(lineElement(this.prefix, this.n, kind, rest));
    }
    if (follow) this.pre.scrollTop = this.pre.scrollHeight;
  };

  // --- a run's page: live logs and statuses ----------------------------
  var run = document.getElementById("run");
  if (!run || run.dataset.live !== "true" || !window.EventSource) return;
  var id = run.dataset.run;
  var logs = {};
  var knownJobs = Array.prototype.map.call(document.querySelectorAll("section.job"), function (s) {
    return s.dataset.job;
  });

  function setBadge(el, status) {
    if (!el) return;
    var symbols = { success: "✓", failure: "✗", cancelled: "⊘", skipped: "–", waiting: "‖", running: "●", queued: "●" };
    el.className = "badge " + status;
    el.dataset.status = status;
    el.innerHTML = "";
    var s = document.createElement("span");
    s.setAttribute("aria-hidden", "true");
    s.textContent = symbols[status] || "";
    el.appendChild(s);
    el.appendChild(document.createTextNode(" " + status));
  }

  var source = new EventSource("/api/runs/" + encodeURIComponent(id) + "/logs?follow=true");
  source.addEventListener("log", function (e) {
    var data = JSON.parse(e.data);
    var log = logs[data.job];
    if (!log) {
      var pre = document.querySelector('pre.log[data-job="' + CSS.escape(data.job) + '"]');
      if (!pre) return;
      log = logs[data.job] = new LiveLog(pre, pre.id.replace(/^log-/, ""));
    }
    log.add(data.line);
  });
  source.addEventListener("end", function () {
    source.close();
    // The finished page: steps, summaries, artifacts.
    setTimeout(function () { window.location.reload(); }, 300);
  });

  function poll() {
    fetch("/api/runs/" + encodeURIComponent(id), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) {
        if (!v) return;
        setBadge(document.querySelector("h1 .badge"), v.status);
        var fresh = false;
        (v.jobs || []).forEach(function (j) {
          if (knownJobs.indexOf(j.key) < 0) fresh = true;
          document.querySelectorAll('[data-job="' + CSS.escape(j.key) + '"] .badge').forEach(function (b) {
            setBadge(b, j.result);
          });
        });
        // A job that started since the page was made needs its section.
        if (fresh) window.location.reload();
      })
      .catch(function () {});
  }
  setInterval(poll, 2000);
})();
