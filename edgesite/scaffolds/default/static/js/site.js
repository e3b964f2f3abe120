// The default theme's behaviour: the dark-mode toggle and the search box. Both are optional:
// without JavaScript the site follows the system's colour scheme and has no search box.
(function () {
  "use strict";
  var root = document.documentElement;

  function systemDark() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  }
  function isDark() {
    var t = root.dataset.theme;
    return t ? t === "dark" : systemDark();
  }
  var toggle = document.querySelector(".theme-toggle");
  if (toggle) {
    var sync = function () { toggle.setAttribute("aria-pressed", isDark() ? "true" : "false"); };
    sync();
    toggle.addEventListener("click", function () {
      var next = isDark() ? "light" : "dark";
      root.dataset.theme = next;
      try { localStorage.setItem("theme", next); } catch (e) {}
      sync();
    });
    if (window.matchMedia) {
      var mq = window.matchMedia("(prefers-color-scheme: dark)");
      if (mq.addEventListener) mq.addEventListener("change", sync);
    }
  }

  // Search over /search.json ([{title, url, summary, tags}]), if the site has one.
  var form = document.querySelector("form.search");
  if (!form || !window.fetch) return;
  var input = form.querySelector("input");
  var list = form.querySelector(".search-results");
  var status = form.querySelector("#search-status");
  var index = null;
  fetch("/search.json", { headers: { accept: "application/json" } })
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (data) {
      if (!Array.isArray(data)) return;
      index = data.map(function (e) {
        var text = [e.title, e.summary, (e.tags || []).join(" ")].join(" ");
        return { entry: e, text: text.replace(/<[^>]*>/g, " ").toLowerCase() };
      });
      form.hidden = false;
    })
    .catch(function () {});

  function strip(html) {
    var d = document.createElement("div");
    d.innerHTML = html || "";
    return d.textContent || "";
  }
  function render(q) {
    list.textContent = "";
    if (!index || q.length < 2) { list.hidden = true; status.textContent = ""; return; }
    var words = q.toLowerCase().split(/\s+/).filter(Boolean);
    var hits = index.filter(function (i) {
      return words.every(function (w) { return i.text.indexOf(w) >= 0; });
    }).slice(0, 8);
    hits.forEach(function (i) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = i.entry.url;
      a.textContent = i.entry.title;
      var small = document.createElement("small");
      small.textContent = strip(i.entry.summary).slice(0, 120);
      a.appendChild(small);
      li.appendChild(a);
      list.appendChild(li);
    });
    list.hidden = hits.length === 0;
    status.textContent = hits.length + (hits.length === 1 ? " result" : " results");
  }
  input.addEventListener("input", function () { render(input.value.trim()); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { input.value = ""; render(""); }
    if (e.key === "ArrowDown") { var first = list.querySelector("a"); if (first) { e.preventDefault(); first.focus(); } }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var first = list.querySelector("a");
    if (first) location.href = first.getAttribute("href");
  });
  document.addEventListener("click", function (e) { if (!form.contains(e.target)) list.hidden = true; });
})();
