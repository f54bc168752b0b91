/* A Test's dashboard: draws the two charts with the Chart.js that ships with the admin theme,
   and refreshes the live part of the page every few seconds while it is open. */
(function () {
  "use strict";

  const charts = {};

  function seriesData() {
    const node = document.getElementById("scout-series");
    return node ? JSON.parse(node.textContent) : null;
  }

  function timeLabel(iso, bucketSeconds) {
    const date = new Date(iso);
    const options = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (bucketSeconds < 60) options.second = "2-digit";
    if (bucketSeconds >= 86400) return date.toLocaleDateString();
    return date.toLocaleTimeString([], options);
  }

  function cssColor(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function options(kind) {
    const grid = cssColor("--color-base-200", "#e5e7eb");
    const text = cssColor("--color-base-500", "#6b7280");
    const percent = kind === "traffic";
    return {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      spanGaps: false,
      interaction: { mode: "index", intersect: false },
      elements: { point: { radius: 2, hoverRadius: 4 }, line: { borderWidth: 2, tension: 0.2 } },
      plugins: {
        legend: {
          display: true,
          position: "bottom",
          labels: { color: text, boxWidth: 10, boxHeight: 10, usePointStyle: true },
        },
        tooltip: {
          callbacks: {
            label: function (context) {
              const value = context.parsed.y;
              if (value === null || value === undefined) return context.dataset.label + ": –";
              return context.dataset.label + ": " +
                (percent ? (value * 100).toFixed(1) + "%" :
                  Number.isInteger(value) ? String(value) : value.toFixed(3));
            },
          },
        },
      },
      scales: {
        x: { ticks: { color: text, maxTicksLimit: 8, maxRotation: 0 }, grid: { color: grid } },
        y: {
          min: percent ? 0 : undefined,
          max: percent ? 1 : undefined,
          ticks: {
            color: text,
            callback: function (value) {
              return percent ? Math.round(value * 100) + "%" : Number(value.toPrecision(3));
            },
          },
          grid: { color: grid },
        },
      },
    };
  }

  function chartPayload(data, kind) {
    return {
      labels: data.timestamps.map(function (t) { return timeLabel(t, data.bucket_seconds); }),
      datasets: data[kind].map(function (set) {
        return Object.assign({}, set, { fill: false });
      }),
    };
  }

  function describeBuckets(data) {
    const seconds = data.bucket_seconds;
    const size = seconds % 60 === 0 ? (seconds / 60) + " min" : seconds + " s";
    let note = "One point per " + size + " bucket";
    if (data.merged_buckets > 1) note += " (" + data.merged_buckets + " trail buckets merged)";
    for (const node of document.querySelectorAll("[data-chart-note]")) {
      node.textContent = note + "; gaps are buckets without data.";
    }
  }

  function draw() {
    const data = seriesData();
    if (!data || typeof Chart === "undefined") return;
    describeBuckets(data);
    for (const [kind, id] of [["traffic", "chart-traffic"], ["reward", "chart-reward"]]) {
      const canvas = document.getElementById(id);
      if (!canvas) continue;
      const payload = chartPayload(data, kind);
      if (charts[kind]) {
        charts[kind].data = payload;
        charts[kind].update("none");
      } else {
        charts[kind] = new Chart(canvas.getContext("2d"), {
          type: "line", data: payload, options: options(kind),
        });
      }
    }
  }

  // --- History: the chosen metric over the chosen range, read from the database ----------

  function historyNote(data) {
    const step = data.step_seconds;
    const size = step >= 3600 ? (step / 3600) + " h" : (step / 60) + " min";
    return "Last " + data.range_label + ", one point per " + size +
      "; read from the history kept in the database (activity shows within about a minute).";
  }

  let historyRequests = 0;

  function drawHistory() {
    const card = document.getElementById("scout-history");
    const canvas = document.getElementById("chart-history");
    if (!card || !canvas || typeof Chart === "undefined") return;
    const metric = document.getElementById("history-metric").value;
    const range = document.getElementById("history-range").value;
    const note = card.querySelector("[data-history-note]");
    const url = card.dataset.url.replace("__metric__", encodeURIComponent(metric)) +
      "?range=" + encodeURIComponent(range);
    // Only the latest request is drawn: an earlier one that answers late is dropped.
    const asked = ++historyRequests;
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.redirected || !response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (asked !== historyRequests) return;
        const variants = Object.keys(data.series);
        const first = variants.length ? data.series[variants[0]] : [];
        const payload = {
          labels: first.map(function (point) { return timeLabel(point[0], data.step_seconds); }),
          datasets: variants.map(function (variant) {
            return {
              label: data.labels[variant] || variant,
              data: data.series[variant].map(function (point) { return point[1]; }),
              borderColor: data.colors[variant],
              backgroundColor: data.colors[variant],
              fill: false,
            };
          }),
        };
        const kind = metric === "traffic_share" ? "traffic" : metric;
        if (charts.history) charts.history.destroy();
        charts.history = new Chart(canvas.getContext("2d"), {
          type: "line", data: payload, options: options(kind),
        });
        card.dataset.step = String(data.step_seconds);
        card.dataset.shown = metric + "|" + range;
        card.dataset.drawn = String(asked);
        note.textContent = historyNote(data);
      })
      .catch(function (error) {
        note.textContent = "Cannot read the history (" + error.message + "); retrying…";
      });
  }

  function refresh() {
    const live = document.getElementById("scout-live");
    const stamp = document.getElementById("scout-refreshed");
    if (!live || document.hidden) return;
    fetch(live.dataset.url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.redirected || !response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        live.innerHTML = html;
        draw();
        stamp.textContent = "Updated " + new Date().toLocaleTimeString();
        stamp.classList.remove("scout-stale");
      })
      .catch(function () {
        stamp.textContent = "Cannot refresh; retrying…";
        stamp.classList.add("scout-stale");
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw();
    drawHistory();
    for (const id of ["history-metric", "history-range"]) {
      const select = document.getElementById(id);
      if (select) select.addEventListener("change", drawHistory);
    }
    window.setInterval(drawHistory, 60 * 1000);
    const stamp = document.getElementById("scout-refreshed");
    const seconds = Number(stamp && stamp.dataset.refreshSeconds) || 5;
    if (stamp) stamp.textContent = "Updated " + new Date().toLocaleTimeString();
    window.setInterval(refresh, seconds * 1000);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) refresh();
    });
  });
})();
