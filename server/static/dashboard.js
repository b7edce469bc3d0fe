// Draws the charts of a dashboard page: each <canvas data-chart="ID"> takes its type, labels
// and series from the JSON in <script type="application/json" id="ID">, which the server wrote.
// Once done, <body data-charts="N"> says how many were drawn (the browser tests read it).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var palette = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
                 "#92400e", "#475569", "#facc15", "#0f766e"];
  var drawn = 0;
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) { return; }
    var spec = JSON.parse(source.textContent);
    var datasets = spec.datasets.map(function (d, i) {
      var colour = d.color || palette[i % palette.length];
      return Object.assign({ backgroundColor: colour, borderColor: colour, pointRadius: 2 }, d);
    });
    // A scatter's points are {x, y}; "logx"/"logy" put an axis on a log scale (an axis given no
    // type keeps the chart's default: categories for bars); a bar's value may be [low, high] (a
    // floating bar: an interval).
    var x = { title: { display: !!spec.x, text: spec.x || "" }, stacked: !!spec.stacked };
    var y = { title: { display: !!spec.y, text: spec.y || "" }, beginAtZero: !spec.logy && !spec.floating,
              stacked: !!spec.stacked };
    if (spec.logx) { x.type = "logarithmic"; }
    if (spec.logy) { y.type = "logarithmic"; }
    new Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: datasets.length > 1 } },
        scales: spec.type === "doughnut" ? {} : { x: x, y: y }
      }
    });
    drawn += 1;
  });
  document.body.dataset.charts = String(drawn);
});
