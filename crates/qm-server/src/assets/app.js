// Quartermaster: keyboard and barcode-scanner helpers. A USB scanner types like a keyboard and
// ends with Enter. No inline scripts (the CSP forbids them): everything is wired up here.
(function () {
  "use strict";
  function byId(id) { return document.getElementById(id); }

  function say(el, text, kind) {
    if (!el) { return; }
    el.textContent = text;
    el.className = text ? "msg tight " + (kind || "note") : "";
    if (kind === "err") { el.setAttribute("role", "alert"); } else { el.removeAttribute("role"); }
  }

  // What is being scanned at the counter, kept in this tab until it is recorded.
  var DRAFT = "qm.counter.draft";
  function saveDraft(d) {
    try { if (d) { sessionStorage.setItem(DRAFT, JSON.stringify(d)); } else { sessionStorage.removeItem(DRAFT); } } catch (e) {}
  }
  function loadDraft() {
    try { return JSON.parse(sessionStorage.getItem(DRAFT) || "null"); } catch (e) { return null; }
  }
  function fromSignIn() {
    try { return new URL(document.referrer).pathname === "/signin"; } catch (e) { return false; }
  }
  // The preview keeps the draft too: a session that ends before the confirmation loses nothing.
  function previewDraft() {
    var c = byId("confirm");
    if (!c) { return; }
    var v = function (n) { var e = c.querySelector("input[name=" + n + "]"); return e ? e.value : ""; };
    saveDraft({ by: c.getAttribute("data-by") || "", mode: v("mode"), badge: v("badge"), location: v("location"), items: v("items") });
  }

  // The counter, worked from a scanner: the badge is checked as soon as it is scanned, the focus
  // goes where the next scan belongs, a lot label without a quantity asks for one, a serial scanned
  // twice is kept once, and what was scanned survives an expired session (kept in this tab until
  // it is recorded).
  function counter() {
    var form = byId("counter"), badge = byId("badge"), scan = byId("scan"), items = byId("items");
    if (!form || !badge || !scan || !items) { return false; }
    var place = byId("location"), check = byId("badge-check"), notice = byId("scan-notice");
    var qtyRow = byId("qty-row"), qty = byId("qty"), qtyLot = byId("qty-lot");
    var lots = {};
    Array.prototype.forEach.call(document.querySelectorAll("#lot-numbers option"), function (o) { lots[o.value] = true; });
    var mode = function () { var m = form.querySelector("input[name=mode]:checked"); return m ? m.value : "issue"; };
    // The draft is the signed-in armorer's: another person signing in at the same terminal does not get it.
    var by = form.getAttribute("data-by") || "";
    var save = function () {
      saveDraft({ by: by, mode: mode(), badge: badge.value, location: place ? place.value : "", items: items.value });
    };
    // Back from signing in again (the session ended in the middle): what was scanned comes back.
    var d = loadDraft();
    if (byId("done")) {
      saveDraft(null);
    } else if (d && d.by === by && fromSignIn() && items.value.trim() === "" && (d.items || "").trim() !== "") {
      badge.value = d.badge || ""; items.value = d.items; if (place && d.location) { place.value = d.location; }
      var r = form.querySelector("input[name=mode][value=" + (d.mode === "return" ? "return" : "issue") + "]");
      if (r) { r.checked = true; }
      say(notice, "Restored what was scanned before signing in again: check it and show the preview.", "note");
      scan.focus();
    }
    form.addEventListener("input", save);
    form.addEventListener("change", save);
    var next = function () {
      if (place && mode() === "issue" && place.value.trim() === "") { place.focus(); } else { scan.focus(); }
    };
    var lookup = function () {
      var b = badge.value.trim();
      if (b === "" || !window.fetch) { next(); return; }
      // An answer for a badge since changed is not shown, and the focus moves only if still on the badge.
      var stale = function () { return badge.value.trim() !== b; };
      var onward = function () { if (document.activeElement === badge) { next(); } };
      fetch("/api/custody/" + encodeURIComponent(b), { credentials: "same-origin" })
        .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (res) {
          if (stale()) { return; }
          if (!res.ok) {
            say(check, (res.body && res.body.error && res.body.error.message) || "This badge is not known here.", "err");
            if (document.activeElement === badge) { badge.select(); }
            return;
          }
          var c = res.body, held = (c.holds || []).length;
          var text = c.name + " · badge " + c.badge + " · unit " + c.unit + " · holds " + (held === 0 ? "nothing" : held + (held === 1 ? " item" : " items"));
          var notes = c.notes || [];
          say(check, notes.length ? text + " — " + notes.join("; ") : text, notes.length ? "warn" : "ok");
          onward();
        })
        .catch(function () { onward(); });
    };
    badge.addEventListener("keydown", function (e) {
      if (e.key === "Enter") { e.preventDefault(); lookup(); }
    });
    if (place) {
      place.addEventListener("keydown", function (e) {
        if (e.key === "Enter") { e.preventDefault(); scan.focus(); }
      });
    }
    var add = function (line) {
      var text = items.value.replace(/\s+$/, "");
      items.value = (text === "" ? "" : text + "\n") + line + "\n";
      save();
    };
    var listed = function (line) {
      return items.value.split("\n").some(function (l) { return l.trim() === line; });
    };
    scan.addEventListener("keydown", function (e) {
      if (e.key !== "Enter") { return; }
      e.preventDefault();
      var v = scan.value.trim();
      if (v === "") { if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); } return; }
      scan.value = "";
      if (v.indexOf(":") < 0 && v.indexOf(">") < 0 && lots[v] && qtyRow && qty) {
        qtyLot.textContent = v; qtyRow.hidden = false; qty.value = ""; qty.focus();
        say(notice, "Lot " + v + " is counted by quantity: how many?", "note");
        return;
      }
      if (v.indexOf(":") < 0 && listed(v)) {
        say(notice, v + " is already on the list; it is kept once.", "warn");
        return;
      }
      say(notice, "", "");
      add(v);
    });
    if (qty) {
      qty.addEventListener("keydown", function (e) {
        if (e.key === "Escape") { qtyRow.hidden = true; say(notice, "", ""); scan.focus(); return; }
        if (e.key !== "Enter") { return; }
        e.preventDefault();
        var n = qty.value.trim();
        if (!/^[0-9]+$/.test(n) || n === "0" || /^0+$/.test(n)) { say(notice, "Type a whole number above zero for lot " + qtyLot.textContent + ".", "err"); return; }
        add(qtyLot.textContent + ":" + n);
        qtyRow.hidden = true; say(notice, "", ""); scan.focus();
      });
    }
    return true;
  }

  // Any other scan field (a count's): Enter appends the scanned item to its list; Enter on an empty
  // field submits.
  function listScan() {
    var scan = byId("scan");
    if (!scan) { return; }
    var target = byId(scan.getAttribute("data-target") || "items");
    scan.addEventListener("keydown", function (e) {
      if (e.key !== "Enter") { return; }
      e.preventDefault();
      var v = scan.value.trim();
      if (v === "") { if (scan.form) { if (scan.form.requestSubmit) { scan.form.requestSubmit(); } else { scan.form.submit(); } } return; }
      if (target) {
        var text = target.value.replace(/\s+$/, "");
        target.value = (text === "" ? "" : text + "\n") + v + "\n";
      }
      scan.value = "";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!counter()) { listScan(); }
    previewDraft();
    // Signing out leaves no scans behind for the next person at this terminal.
    Array.prototype.forEach.call(document.querySelectorAll("form[action='/signout']"), function (f) {
      f.addEventListener("submit", function () { saveDraft(null); });
    });
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
