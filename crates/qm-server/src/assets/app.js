// Quartermaster: keyboard and barcode-scanner helpers. A USB scanner types like a keyboard and
// ends with Enter. No inline scripts (the CSP forbids them): everything is wired up here.
(function () {
  "use strict";
  function byId(id) { return document.getElementById(id); }

  document.addEventListener("DOMContentLoaded", function () {
    // Badge field: Enter moves on to the scan field instead of submitting.
    var badge = byId("badge"), scan = byId("scan");
    if (badge && scan) {
      badge.addEventListener("keydown", function (e) {
        if (e.key === "Enter") { e.preventDefault(); scan.focus(); }
      });
    }
    // Scan field: Enter appends the scanned item to the list; Enter on an empty field submits.
    if (scan) {
      var target = byId(scan.getAttribute("data-target") || "items");
      scan.addEventListener("keydown", function (e) {
        if (e.key !== "Enter") { return; }
        e.preventDefault();
        var v = scan.value.trim();
        if (v === "") { if (scan.form) { scan.form.requestSubmit ? scan.form.requestSubmit() : scan.form.submit(); } return; }
        if (target) {
          var text = target.value.replace(/\s+$/, "");
          target.value = (text === "" ? "" : text + "\n") + v + "\n";
        }
        scan.value = "";
      });
    }
    // The preview's confirm button (or the witness's badge) takes the focus, so Enter confirms.
    var first = byId("witness_badge") || byId("confirm-button");
    if (first) { first.focus(); }
    // Escape on the preview goes back to change the request.
    var back = byId("back");
    if (back) {
      document.addEventListener("keydown", function (e) {
        if (e.key === "Escape") { window.location.href = back.getAttribute("href"); }
      });
    }
    // Print buttons on label pages.
    Array.prototype.forEach.call(document.querySelectorAll("button.print"), function (b) {
      b.addEventListener("click", function () { window.print(); });
    });
    // The incidents badge: how many incidents in the person's subtree nobody has acknowledged yet,
    // asked for now and every 30 s.
    var badge = byId("incident-badge");
    if (badge && window.fetch) {
      var refresh = function () {
        fetch("/api/incidents/summary", { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (s) {
            if (!s) { return; }
            badge.textContent = String(s.unacknowledged);
            badge.hidden = s.unacknowledged === 0;
            badge.classList.toggle("late", s.clocks_missed > 0);
          })
          .catch(function () {});
      };
      refresh();
      setInterval(refresh, 30000);
    }
    // The directives banner: those in force over the person's unit, asked for now and every 30 s.
    var banner = byId("directive-banner");
    if (banner && window.fetch) {
      var show = function () {
        fetch("/api/directives/banner", { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (list) {
            if (!list) { return; }
            banner.textContent = "";
            list.forEach(function (d) {
              var line = document.createElement("div");
              line.className = "directive " + (d.briefed ? "briefed" : "unbriefed");
              var a = document.createElement("a");
              a.href = "/directives/" + encodeURIComponent(d.id);
              a.textContent = d.id + " — " + d.title;
              line.appendChild(document.createTextNode("In force (" + d.posture + " posture, until " + d.until + "): "));
              line.appendChild(a);
              line.appendChild(document.createTextNode(d.measures.length ? " · " + d.measures.join(", ") : ""));
              if (!d.briefed) { line.appendChild(document.createTextNode(" · your shift briefing is due")); }
              banner.appendChild(line);
            });
            banner.hidden = list.length === 0;
          })
          .catch(function () {});
      };
      show();
      setInterval(show, 30000);
    }
    // The notifications page: the person's list, live. Asked for every 5 s; new ones go on top.
    var live = byId("my-notifications-live");
    if (live && window.fetch) {
      var seen = live.getAttribute("data-newest") || "";
      var cell = function (tr, text, href) {
        var td = document.createElement("td");
        if (href) { var a = document.createElement("a"); a.href = href; a.textContent = text; td.appendChild(a); } else { td.textContent = text; }
        tr.appendChild(td);
      };
      var poll = function () {
        fetch("/api/notifications", { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (list) {
            if (!list || list.length === 0 || list[0].id === seen) { return; }
            var table = byId("my-notifications");
            if (!table) {
              live.textContent = "";
              table = document.createElement("table");
              table.id = "my-notifications";
              var head = document.createElement("thead"), hr = document.createElement("tr");
              ["When", "Incident", "What"].forEach(function (h) { var th = document.createElement("th"); th.textContent = h; hr.appendChild(th); });
              head.appendChild(hr); table.appendChild(head); table.appendChild(document.createElement("tbody"));
              live.appendChild(table);
            }
            var body = table.querySelector("tbody");
            var fresh = [];
            for (var i = 0; i < list.length && list[i].id !== seen; i++) { fresh.push(list[i]); }
            fresh.reverse().forEach(function (n) {
              var tr = document.createElement("tr");
              tr.className = "fresh";
              cell(tr, n.created);
              cell(tr, n.incident || "—", n.incident ? "/incidents/" + encodeURIComponent(n.incident) : null);
              cell(tr, n.subject);
              body.insertBefore(tr, body.firstChild);
            });
            seen = list[0].id;
            live.setAttribute("data-newest", seen);
          })
          .catch(function () {});
      };
      setInterval(poll, 5000);
    }
    // The door terminal: Enter on the badge moves to the PIN (a badge reader ends with Enter); the
    // answer clears after a few seconds, ready for the next person; the session is kept alive
    // while the terminal stays open (the server still ends it after its maximum age).
    var door = byId("door-terminal"), doorBadge = byId("door-badge"), doorPin = byId("door-pin");
    if (door && doorBadge && doorPin) {
      doorBadge.addEventListener("keydown", function (e) {
        if (e.key === "Enter") { e.preventDefault(); if (doorBadge.value.trim() !== "") { doorPin.focus(); } }
      });
      var answer = byId("door-answer");
      if (answer) { setTimeout(function () { answer.remove(); doorBadge.focus(); }, 6000); }
      doorBadge.focus();
      setInterval(function () { fetch("/api/me", { credentials: "same-origin" }).catch(function () {}); }, 60000);
    }
    // Tells tests (and anyone curious) that the keyboard helpers are in place.
    document.body.setAttribute("data-ready", "1");
  });
})();
