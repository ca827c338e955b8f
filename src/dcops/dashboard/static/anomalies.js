// dcops dashboard: anomaly scores beside the fleet. Reads /api/v1/detection/scores (the
// latest score of each series, with what explains it) and, for the top scores, their last
// 30 minutes of dcops_anomaly_score from the PromQL API, drawn as small SVG sparklines.
// Loaded before app.js, which calls fetchScores() and renderAnomalies() on each refresh.
"use strict";

const SCORES_API = "/api/v1/detection/scores?limit=1000";
const RANGE_API = "/api/v1/query_range";
const SHOW_SCORE = 0.5;   // a node badge from this score up
const TOP_ROWS = 5;
const SPARK_WINDOW_S = 1800;
const SPARK_STEP_S = 10;
const SVG_NS = "http://www.w3.org/2000/svg";

// The latest scores, or null when detection is off or the call failed (never fatal).
async function fetchScores(token) {
  try {
    const response = await fetch(SCORES_API, {
      headers: { Authorization: "Bearer " + token, Accept: "application/json" }, cache: "no-store",
    });
    if (!response.ok) return null;
    return (await response.json()).scores;
  } catch (err) {
    return null;
  }
}

// node name -> its highest score (with the GPU and explanation that gave it).
function scoresByNode(scores) {
  const byNode = new Map();
  for (const s of scores || []) {
    const node = s.labels.node;
    if (!node) continue;
    const best = byNode.get(node);
    if (!best || s.score > best.score) byNode.set(node, s);
  }
  return byNode;
}

function anomalyBadge(score) {
  if (!score || score.score < SHOW_SCORE) return null;
  const level = score.firing || score.score >= score.threshold ? "anomaly-high" : "anomaly-warn";
  const badge = el("span", "badge anomaly " + level, "◆ " + score.score.toFixed(2));
  badge.title = "anomaly score " + score.score.toFixed(2) + " (" + score.detector + ")" +
    (score.labels.gpu !== undefined ? ", GPU " + score.labels.gpu : "") + "\n" + score.summary;
  return badge;
}

function seriesName(s) {
  return Object.keys(s.labels).filter((k) => k !== "detector").sort()
    .map((k) => k + "=" + s.labels[k]).join(" ");
}

function selectorOf(s) {
  const parts = Object.keys(s.labels).sort().map((k) => k + '="' +
    String(s.labels[k]).replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"');
  return "dcops_anomaly_score{" + parts.join(",") + "}";
}

async function fetchHistory(token, s, now) {
  const params = new URLSearchParams({ query: selectorOf(s), start: String(now - SPARK_WINDOW_S),
    end: String(now), step: String(SPARK_STEP_S) });
  try {
    const response = await fetch(RANGE_API + "?" + params.toString(), {
      headers: { Authorization: "Bearer " + token, Accept: "application/json" }, cache: "no-store",
    });
    if (!response.ok) return [];
    const body = await response.json();
    const result = body.data && body.data.result;
    return result && result.length ? result[0].values.map(([t, v]) => [Number(t), Number(v)]) : [];
  } catch (err) {
    return [];
  }
}

// A 120 x 24 sparkline of scores in [0, 1], with the alert threshold as a dashed line.
function sparkline(points, threshold, now) {
  const w = 120, h = 24;
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.setAttribute("width", String(w));
  svg.setAttribute("height", String(h));
  const x = (t) => ((t - (now - SPARK_WINDOW_S)) / SPARK_WINDOW_S) * w;
  const y = (v) => h - 1 - Math.max(0, Math.min(1, v)) * (h - 2);
  const limit = document.createElementNS(SVG_NS, "line");
  limit.setAttribute("class", "spark-threshold");
  limit.setAttribute("x1", "0"); limit.setAttribute("x2", String(w));
  limit.setAttribute("y1", String(y(threshold))); limit.setAttribute("y2", String(y(threshold)));
  svg.append(limit);
  const line = document.createElementNS(SVG_NS, "polyline");
  line.setAttribute("class", "spark-line");
  line.setAttribute("points", points.map(([t, v]) => x(t).toFixed(1) + "," + y(v).toFixed(1)).join(" "));
  svg.append(line);
  return svg;
}

async function renderAnomalies(scores, token, now) {
  const box = document.getElementById("anomalies");
  if (!scores) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const top = scores.slice(0, TOP_ROWS);
  const histories = await Promise.all(top.map((s) => fetchHistory(token, s, now)));
  const rows = top.map((s, i) => {
    const row = el("div", "anomaly-row" + (s.firing ? " firing" : ""));
    const level = s.firing || s.score >= s.threshold ? "anomaly-high" : s.score >= SHOW_SCORE ? "anomaly-warn" : "";
    row.append(el("span", "anomaly-score " + level, s.score.toFixed(2)), sparkline(histories[i], s.threshold, now),
      el("span", "anomaly-series", seriesName(s)), el("span", "anomaly-why", s.summary));
    row.title = s.detector + (s.firing ? " — alert firing" : "");
    return row;
  });
  const head = el("h2", "", "Anomaly scores");
  if (!rows.length) rows.push(el("p", "empty", "No scores yet: detectors score each interval."));
  box.replaceChildren(head, ...rows);
}
