// dcops dashboard: fetches the fleet overview every 5 s and draws one panel per rack.
// The API token comes from the URL fragment (#token=...), is kept in localStorage and
// sent as "Authorization: Bearer <token>". Everything is drawn with textContent, never HTML.
"use strict";

const API = "/api/v1/fleet/overview";
const TOKEN_KEY = "dcops_token";
const REFRESH_MS = 5000;

let timer = null;

function tokenFromFragment() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    window.localStorage.setItem(TOKEN_KEY, token);
    // Drop the secret from the address bar and the history.
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

function currentToken() {
  return window.localStorage.getItem(TOKEN_KEY);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function fmt(value, digits, unit) {
  if (value === null || value === undefined) return "–";
  return Number(value).toFixed(digits) + (unit || "");
}

function ago(seconds, now) {
  if (!seconds) return "never";
  const d = Math.max(0, now - seconds);
  if (d < 90) return Math.round(d) + " s ago";
  if (d < 5400) return Math.round(d / 60) + " min ago";
  return Math.round(d / 3600) + " h ago";
}

function utilColor(util) {
  if (util === null || util === undefined) return "";
  const u = Math.max(0, Math.min(100, util)) / 100;
  // Dark enough at 100 % that white, amber and red text stay readable on it.
  return "hsl(" + (215 - 75 * u) + ", " + (20 + 45 * u) + "%, " + (22 + 6 * u) + "%)";
}

function tempClass(temp, thresholds) {
  if (temp === null || temp === undefined) return "";
  if (temp >= thresholds.temperature_hot_celsius) return "temp-hot";
  if (temp >= thresholds.temperature_warn_celsius) return "temp-warn";
  return "";
}

function showLogin(reason) {
  const dialog = document.getElementById("login");
  document.getElementById("login-reason").textContent = reason;
  if (!dialog.open) dialog.showModal();
}

function setStatus(text, isError) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function renderTotals(data) {
  const t = data.totals;
  const th = data.thresholds;
  const cards = [
    ["Nodes", t.nodes_reporting + " / " + t.nodes, "reporting / known", ""],
    ["GPUs", t.gpus_reporting + " / " + t.gpus, "reporting / known", ""],
    ["Avg GPU util", fmt(t.gpu_utilization_avg_percent, 1, " %"), "over reporting GPUs", ""],
    ["Max GPU temp", fmt(t.gpu_temperature_max_celsius, 0, " °C"), t.hot_gpus + " at or above " + th.temperature_hot_celsius + " °C",
      tempClass(t.gpu_temperature_max_celsius, th)],
    ["Thermal throttling", t.throttled_gpus, "GPUs slowed by heat", t.throttled_gpus ? "temp-hot" : ""],
    ["Faults", t.faults, "Xid / uncorrected ECC, last " + Math.round(data.fault_window_s / 60) + " min",
      t.faults ? "fault-text" : ""],
    ["GPU power", fmt(t.gpu_power_watts / 1000, 1, " kW"), t.racks + " racks", ""],
  ];
  const box = document.getElementById("totals");
  box.replaceChildren(...cards.map(([label, value, note, cls]) => {
    const card = el("div", "card");
    card.append(el("div", "label", label), el("div", "value " + cls, value), el("div", "note", note));
    return card;
  }));
}

function gpuTitle(node, now, anomaly) {
  const lines = [node.name + " — " + node.state + (node.reporting ? "" : " (not reporting)"),
    "last seen " + ago(node.last_seen, now)];
  if (node.gpu_model) lines.push(node.gpu_count + " × " + node.gpu_model);
  for (const g of node.gpus) {
    let line = "GPU " + g.index + ": " + fmt(g.utilization_percent, 0, " %") + ", " + fmt(g.temperature_celsius, 0, " °C") +
      ", " + fmt(g.power_watts, 0, " W");
    if (g.throttled && g.throttled.length) line += ", throttled (" + g.throttled.join(", ") + ")";
    if (g.faults) line += ", " + g.faults + " fault(s)";
    lines.push(line);
  }
  if (anomaly) lines.push("anomaly score " + anomaly.score.toFixed(2) + ": " + anomaly.summary);
  return lines.join("\n");
}

function renderNode(node, data, anomalies) {
  const th = data.thresholds;
  const cell = el("div", "node");
  if (!node.reporting) cell.classList.add("silent");
  if (node.state !== "active") cell.classList.add("not-active");
  if (node.gpu_temperature_max_celsius !== null && node.gpu_temperature_max_celsius >= th.temperature_hot_celsius) cell.classList.add("hot");
  cell.style.backgroundColor = utilColor(node.gpu_utilization_avg_percent);
  const anomaly = anomalies.get(node.name);
  cell.title = gpuTitle(node, data.generated_at, anomaly);

  const head = el("div", "node-head");
  head.append(el("span", "node-name", node.name));
  if (node.faults) head.append(el("span", "badge fault", "⚠ " + node.faults));
  const badge = anomalyBadge(anomaly);
  if (badge) head.append(badge);
  cell.append(head);

  const stats = el("div", "node-stats");
  if (!node.gpus.length && node.reporting) {
    // A host without GPUs (a login or storage node, or this machine): show its CPU instead.
    stats.append(el("span", "util", "CPU " + fmt(node.cpu_percent, 0, "%")));
  } else {
    stats.append(el("span", "util", node.reporting ? fmt(node.gpu_utilization_avg_percent, 0, "%") : "no data"),
      el("span", "temp " + tempClass(node.gpu_temperature_max_celsius, th), fmt(node.gpu_temperature_max_celsius, 0, "°C")));
  }
  cell.append(stats);

  const gpus = el("div", "gpus");
  for (const g of node.gpus) {
    const dot = el("i", "gpu " + tempClass(g.temperature_celsius, th));
    dot.style.backgroundColor = utilColor(g.utilization_percent);
    if (g.faults) dot.classList.add("gpu-fault");
    gpus.append(dot);
  }
  cell.append(gpus);
  if (node.state !== "active") cell.append(el("div", "badge state", node.state));
  return cell;
}

function renderRack(rack, data, anomalies) {
  const panel = el("section", "rack");
  const head = el("header", "rack-head");
  head.append(el("h3", "", rack.name));
  const facts = [];
  if (rack.inlet_temperature_celsius !== null) facts.push("inlet " + fmt(rack.inlet_temperature_celsius, 1, " °C"));
  if (rack.power_watts !== null) {
    let power = fmt(rack.power_watts / 1000, 1, " kW");
    if (rack.power_capacity_watts) power += " / " + fmt(rack.power_capacity_watts / 1000, 0, " kW");
    facts.push(power);
  }
  const info = el("span", "rack-facts", facts.join(" · "));
  if (rack.inlet_temperature_celsius !== null && rack.inlet_temperature_celsius > 27) info.classList.add("temp-hot");
  head.append(info);
  panel.append(head);
  const grid = el("div", "nodes");
  grid.append(...rack.nodes.map((n) => renderNode(n, data, anomalies)));
  if (!rack.nodes.length) grid.append(el("div", "empty", "no nodes"));
  panel.append(grid);
  return panel;
}

function render(data, scores) {
  renderTotals(data);
  const anomalies = scoresByNode(scores);
  const fleet = document.getElementById("fleet");
  const parts = [];
  for (const room of data.rooms) {
    const block = el("section", "room");
    block.append(el("h2", "", room.name ? room.name + (room.site ? " · " + room.site : "")
      : "racks not in the inventory"));
    const racks = el("div", "racks");
    racks.append(...room.racks.map((r) => renderRack(r, data, anomalies)));
    block.append(racks);
    parts.push(block);
  }
  if (data.unplaced.length) {
    parts.push(renderRack({ name: "unplaced nodes", inlet_temperature_celsius: null, power_watts: null,
      power_capacity_watts: null, nodes: data.unplaced }, data, anomalies));
  }
  if (!parts.length) parts.push(el("p", "empty", "No racks or nodes yet. Start an agent or register inventory."));
  fleet.replaceChildren(...parts);
}

async function refresh() {
  clearTimeout(timer);
  const token = currentToken();
  if (!token) {
    showLogin("Paste a dcops API token (viewer or above).");
    setStatus("not signed in", false);
    return;
  }
  document.getElementById("logout").hidden = false;
  try {
    const response = await fetch(API, {
      headers: { Authorization: "Bearer " + token, Accept: "application/json" },
      cache: "no-store",
    });
    if (response.status === 401 || response.status === 403) {
      window.localStorage.removeItem(TOKEN_KEY);
      document.getElementById("logout").hidden = true;
      showLogin(response.status === 401 ? "That token was not accepted; paste another."
        : "That token may not read the fleet; use a viewer token or above.");
      setStatus("not signed in", true);
      return;
    }
    if (!response.ok) throw new Error("HTTP " + response.status);
    const data = await response.json();
    const scores = await fetchScores(token);
    render(data, scores);
    await renderAnomalies(scores, token, data.generated_at);
    setStatus("updated " + new Date(data.generated_at * 1000).toLocaleTimeString(), false);
  } catch (err) {
    setStatus("cannot reach dcops: " + err.message + " (retrying)", true);
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function start() {
  tokenFromFragment();
  document.getElementById("login-form").addEventListener("submit", () => {
    const input = document.getElementById("login-token");
    const token = input.value.trim();
    input.value = "";
    if (token) window.localStorage.setItem(TOKEN_KEY, token);
    refresh();
  });
  document.getElementById("logout").addEventListener("click", () => {
    window.localStorage.removeItem(TOKEN_KEY);
    clearTimeout(timer);
    document.getElementById("logout").hidden = true;
    showLogin("Token forgotten. Paste a token to continue.");
  });
  window.addEventListener("hashchange", () => { tokenFromFragment(); refresh(); });
  refresh();
}

document.addEventListener("DOMContentLoaded", start);
