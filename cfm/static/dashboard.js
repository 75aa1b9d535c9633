/* CFM dashboard (issue 6): draws the charts with the vendored Chart.js from the JSON block in the page.
   No inline script (the console's CSP allows scripts from 'self' only). Every chart has a table of the same
   numbers in the page; without JavaScript the tables are what people see. */
(function () {
  "use strict";

  var source = document.getElementById("dashboard-data");
  if (!source || typeof window.Chart === "undefined") { return; }
  var page = JSON.parse(source.textContent);
  var settings = page.settings || {};
  var rtl = Boolean(settings.rtl);
  var css = getComputedStyle(document.documentElement);
  var color = function (name, fallback) { return (css.getPropertyValue(name) || "").trim() || fallback; };
  var ink = color("--ink-2", "#3a4559");
  var muted = color("--muted", "#667085");
  var line = color("--line", "#e4e7ec");
  var accent = color("--accent", "#2457c5");
  // Ratings 1..5: red to green through a neutral middle (readable in grey print too: the lightness differs).
  var scale = ["#d92d20", "#f38744", "#c4cad4", "#5fcf96", "#067647"];

  var Chart = window.Chart;
  Chart.defaults.font.family = color("--font", "system-ui, sans-serif");
  Chart.defaults.font.size = 12;
  Chart.defaults.color = ink;
  Chart.defaults.borderColor = line;
  Chart.defaults.animation = false; // calm, and identical on screen, in print and in screenshots

  var number = new Intl.NumberFormat(settings.locale || undefined);
  var ticks = function (value) { return Number.isInteger(value) ? number.format(value) : ""; };

  function labelled(chart) {
    // A hidden figure gets no bar; its label says why ("<5").
    if (chart.datasets.length !== 1 || chart.kind === "line") { return chart.labels; }
    var data = chart.datasets[0].data;
    return chart.labels.map(function (text, i) { return data[i] === null ? text + " (" + settings.hidden + ")" : text; });
  }

  function tooltipText(chart) {
    // Survey choices: the people who chose an option and their share of those who answered ("12 (40%)").
    if (chart.kind !== "choice") { return {}; }
    return {
      label: function (item) {
        var share = chart.shares[item.dataIndex];
        return item.dataset.label + ": " + item.formattedValue + (share ? " (" + share + ")" : "");
      },
    };
  }

  function config(chart) {
    var horizontal = Boolean(chart.horizontal) || chart.kind === "stacked";
    var stacked = chart.kind === "stacked";
    var valueAxis = { beginAtZero: true, stacked: stacked, ticks: { precision: 0, callback: ticks, color: muted }, grid: { color: line } };
    var labelAxis = { stacked: stacked, grid: { display: false }, ticks: { color: ink, autoSkip: !horizontal } };
    if (horizontal) {
      valueAxis.reverse = rtl;
      labelAxis.position = rtl ? "right" : "left";
      labelAxis.ticks.callback = function (value) {
        var text = this.getLabelForValue(value);
        return text.length > 42 ? text.slice(0, 40) + "…" : text;
      };
    } else {
      labelAxis.reverse = rtl;
      valueAxis.position = rtl ? "right" : "left";
    }
    var datasets = chart.datasets.map(function (set) {
      var base = { label: set.label, data: set.data, borderWidth: 0 };
      if (stacked) {
        base.backgroundColor = scale[set.scale];
        base.barThickness = 22;
      } else if (chart.kind === "line") {
        base.borderColor = accent;
        base.borderWidth = 2.5;
        base.backgroundColor = "rgba(36, 87, 197, 0.12)";
        base.fill = "origin";
        base.tension = 0.3;
        base.cubicInterpolationMode = "monotone"; // no overshoot below zero or above a peak
        base.pointRadius = 3;
        base.pointBackgroundColor = accent;
      } else {
        base.backgroundColor = accent;
        base.borderRadius = 4;
        base.maxBarThickness = 28;
      }
      return base;
    });
    return {
      type: chart.kind === "line" ? "line" : "bar",
      data: { labels: labelled(chart), datasets: datasets },
      options: {
        indexAxis: horizontal ? "y" : "x",
        maintainAspectRatio: false,
        layout: { padding: { left: 24, right: 24 } }, // room for the first and last week labels
        responsive: true,
        locale: settings.locale,
        scales: horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis },
        plugins: {
          legend: {
            display: stacked,
            position: "bottom",
            rtl: rtl,
            labels: { boxWidth: 14, boxHeight: 14, color: ink },
          },
          tooltip: { rtl: rtl, textDirection: rtl ? "rtl" : "ltr", callbacks: tooltipText(chart) },
          subtitle: {
            // A line has gaps where weeks are hidden: say so instead of crowding every label.
            display: chart.kind === "line" && chart.datasets[0].data.indexOf(null) !== -1,
            text: settings.gaps || "",
            align: "start",
            color: muted,
            padding: { bottom: 10 },
          },
        },
      },
    };
  }

  function fit(box, chart) {
    // Horizontal bars get the height their rows need; the rest keep the stylesheet's height.
    if (!(chart.horizontal || chart.kind === "stacked")) { return; }
    var rows = Math.max(chart.labels.length, 1);
    var perRow = chart.kind === "stacked" ? 40 : 30;
    box.style.height = String(rows * perRow + (chart.kind === "stacked" ? 80 : 44)) + "px";
  }

  var drawn = [];
  page.charts.forEach(function (chart) {
    var canvas = document.querySelector('canvas[data-chart="' + chart.id + '"]');
    if (!canvas || !chart.labels.length) { return; }
    var figure = canvas.closest("figure");
    figure.classList.add("has-chart"); // shows the chart box before Chart.js measures it
    fit(canvas.parentElement, chart);
    drawn.push(new Chart(canvas, config(chart)));
    var table = figure.querySelector(".dash-table");
    if (!table) { return; }
    var toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "btn btn-quiet dash-toggle";
    toggle.setAttribute("aria-expanded", "false");
    toggle.textContent = settings.table || "Table";
    toggle.addEventListener("click", function () {
      var open = figure.classList.toggle("show-table");
      toggle.setAttribute("aria-expanded", String(open));
    });
    figure.querySelector(".card-title").appendChild(toggle);
  });
  if (drawn.length) { document.body.classList.add("charts-on"); }

  window.addEventListener("beforeprint", function () { drawn.forEach(function (c) { c.resize(); }); });
  window.addEventListener("afterprint", function () { drawn.forEach(function (c) { c.resize(); }); });

  var print = document.querySelector("[data-print]");
  if (print) {
    print.hidden = false;
    print.addEventListener("click", function () { window.print(); });
  }
})();
