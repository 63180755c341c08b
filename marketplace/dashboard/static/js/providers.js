// Providers on a world map (bundled Natural Earth shapes from world-atlas, equirectangular
// SVG), coloured by energy level, each region's electricity price over the last day and its
// energy level over the coming hours (a strip of coloured hours, refreshed with the page).
import { $, el, svg, api, shortAddress, every } from "/dashboard/static/js/ui.js";
import "/dashboard/static/js/wallet.js";
import { imagesSummary } from "/dashboard/static/js/images.js";

const W = 1000;
const H = 500;
// 0 (cheap, low demand) .. 9 (expensive): green to dark red.
export const LEVEL_COLOURS = [
  "#1a9850", "#66bd63", "#a6d96a", "#d9ef8b", "#ffffbf",
  "#fee08b", "#fdae61", "#f46d43", "#d73027", "#a50026",
];

const x = (lon) => ((lon + 180) / 360) * W;
const y = (lat) => ((90 - lat) / 180) * H;

/**
 * SVG path data of one ring. Longitudes are unwrapped so a ring crossing the antimeridian
 * stays whole (drawn again shifted by 360 degrees to fill the other edge); a ring that
 * circles a pole (Antarctica) is closed along that pole.
 */
function ringPaths(ring) {
  const pts = [];
  let offset = 0;
  for (let i = 0; i < ring.length; i++) {
    let [lon, lat] = ring[i];
    if (i > 0) {
      const prev = ring[i - 1][0];
      if (lon - prev > 180) offset -= 360;
      else if (prev - lon > 180) offset += 360;
    }
    pts.push([lon + offset, lat]);
  }
  const drift = pts[pts.length - 1][0] - pts[0][0];
  if (Math.abs(drift) > 180) {
    const pole = pts.reduce((s, p) => s + p[1], 0) < 0 ? -90 : 90;
    pts.push([pts[pts.length - 1][0], pole], [pts[0][0], pole]);
  }
  const d = (shift) =>
    `M${pts.map(([lon, lat]) => `${x(lon + shift).toFixed(1)},${y(lat).toFixed(1)}`).join("L")}Z`;
  const lons = pts.map((p) => p[0]);
  const out = [d(0)];
  if (Math.max(...lons) > 180) out.push(d(-360));
  if (Math.min(...lons) < -180) out.push(d(360));
  return out;
}

function countryPath(geometry) {
  if (!geometry) return "";
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  return polygons.flatMap((rings) => rings.flatMap(ringPaths)).join("");
}

let base = null;

async function drawBase() {
  const topology = await (await fetch("/dashboard/static/vendor/countries-110m.json")).json();
  const countries = window.topojson.feature(topology, topology.objects.countries);
  const map = svg("svg", {
    class: "map",
    viewBox: `0 0 ${W} ${H}`,
    role: "group",
    "aria-label": "World map of providers",
  });
  map.append(svg("rect", { x: 0, y: 0, width: W, height: H, fill: "#dfeaf5" }));
  const grid = [];
  for (let lon = -150; lon < 180; lon += 30) grid.push(`M${x(lon)},0V${H}`);
  for (let lat = -60; lat < 90; lat += 30) grid.push(`M0,${y(lat)}H${W}`);
  map.append(svg("path", { class: "graticule", d: grid.join(""), "aria-hidden": "true" }));
  const land = svg("g", { "aria-hidden": "true" });
  for (const f of countries.features) {
    land.append(svg("path", { class: "land", d: countryPath(f.geometry), "fill-rule": "evenodd" }, svg("title", {}, f.properties.name)));
  }
  map.append(land, svg("g", { id: "regions" }), svg("g", { id: "dots" }));
  $("#map").replaceChildren(map);
  base = map;
}

function drawLegend() {
  $("#legend").replaceChildren(
    el("li", {}, "Energy level:"),
    ...LEVEL_COLOURS.map((c, i) =>
      el("li", {}, el("span", { class: "swatch", style: `background:${c}` }), `${i}${i === 0 ? " (cheapest)" : i === 9 ? " (dearest)" : ""}`),
    ),
    el("li", {}, "+ electricity region"),
  );
}

function drawRegions(regions) {
  const g = base.querySelector("#regions");
  g.replaceChildren(
    ...regions.map((r) => {
      const cx = x(r.location.lon);
      const cy = y(r.location.lat);
      return svg("path", { class: "region", d: `M${cx - 4},${cy}H${cx + 4}M${cx},${cy - 4}V${cy + 4}` },
        svg("title", {}, `${r.name}: ${r.price_per_mwh.toFixed(1)} per MWh, energy level ${r.energy_level}`));
    }),
  );
}

function drawProviders(providers) {
  const g = base.querySelector("#dots");
  g.replaceChildren(
    ...providers.map((p) => {
      const label = `Provider ${p.address} in ${p.region}, energy level ${p.energy_level}, ${p.online ? "online" : "offline"}, ${p.price_wei} wei per CPU-second`;
      return svg(
        "circle",
        {
          class: `provider${p.online ? "" : " offline"}`,
          cx: x(p.location.lon).toFixed(1),
          cy: y(p.location.lat).toFixed(1),
          r: 7,
          fill: LEVEL_COLOURS[Math.max(0, Math.min(9, p.energy_level))],
          tabindex: 0,
          role: "img",
          "aria-label": label,
          "data-address": p.address,
          "data-level": p.energy_level,
        },
        svg("title", {}, label),
      );
    }),
  );
}

function drawTable(providers) {
  const body = $("#providers-body");
  if (!providers.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 10 }, "No provider has registered yet.")));
    return;
  }
  body.replaceChildren(
    ...providers.map((p) =>
      el(
        "tr",
        { "data-address": p.address },
        el("td", {}, el("code", { title: p.address }, shortAddress(p.address))),
        el("td", {}, p.region),
        el("td", { class: "num" }, el("span", { class: "swatch-inline", style: `color:${LEVEL_COLOURS[p.energy_level]}`, "aria-hidden": "true" }, "● "), String(p.energy_level)),
        el("td", {}, `${p.location.lat.toFixed(2)}, ${p.location.lon.toFixed(2)}`),
        el("td", { class: "num" }, String(p.price_wei)),
        el("td", {}, `${p.free.cpu} CPU, ${p.free.memory_mb} MB`),
        el("td", {}, imagesSummary(p.images)),
        el("td", {}, p.online ? "yes" : "no"),
        el("td", { class: "num" }, `${(p.reputation * 100).toFixed(0)} %`),
        el("td", { class: "num" }, `${p.jobs_completed} / ${p.jobs_failed} / ${p.jobs_slashed}`),
      ),
    ),
  );
}

function drawCharts(history, regionsNow) {
  const levelNow = Object.fromEntries(regionsNow.map((r) => [r.id, r]));
  const cw = 240;
  const ch = 80;
  const pad = { l: 30, r: 6, t: 6, b: 14 };
  $("#charts").replaceChildren(
    ...history.map((region) => {
      const prices = region.points.map((p) => p.price);
      const lo = Math.min(...prices);
      const hi = Math.max(...prices);
      const span = hi - lo || 1;
      const px = (i) => pad.l + (i / Math.max(1, prices.length - 1)) * (cw - pad.l - pad.r);
      const py = (v) => pad.t + (1 - (v - lo) / span) * (ch - pad.t - pad.b);
      const now = levelNow[region.id];
      const last = region.points[region.points.length - 1];
      const summary = `${region.name}: ${last.price.toFixed(1)} per MWh now (range ${lo.toFixed(1)} to ${hi.toFixed(1)} over the day), energy level ${now ? now.energy_level : last.level}`;
      return el(
        "li",
        { "data-region": region.id },
        el("h3", {}, region.name, " ", el("span", { class: "hint" }, `level ${now ? now.energy_level : last.level}`)),
        svg(
          "svg",
          { viewBox: `0 0 ${cw} ${ch}`, role: "img", "aria-label": summary },
          svg("title", {}, summary),
          svg("path", { class: "axis", d: `M${pad.l},${pad.t}V${ch - pad.b}H${cw - pad.r}` }),
          svg("text", { x: pad.l - 3, y: pad.t + 7, "text-anchor": "end" }, hi.toFixed(0)),
          svg("text", { x: pad.l - 3, y: ch - pad.b, "text-anchor": "end" }, lo.toFixed(0)),
          svg("text", { x: pad.l, y: ch - 2 }, "−24 h"),
          svg("text", { x: cw - pad.r, y: ch - 2, "text-anchor": "end" }, "now"),
          svg("polyline", { class: "line", points: prices.map((v, i) => `${px(i).toFixed(1)},${py(v).toFixed(1)}`).join(" ") }),
          svg("circle", { cx: px(prices.length - 1), cy: py(last.price), r: 3, fill: LEVEL_COLOURS[now ? now.energy_level : last.level], stroke: "#111" }),
        ),
        el("div", { class: "ahead", role: "img", "aria-label": "Energy level over the next hours" }),
        el("p", { class: "hint ahead-caption" }, ""),
      );
    }),
  );
}

const AHEAD_HOURS = 12;

function hourLabel(t) {
  return new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function drawAhead(ahead) {
  for (const region of ahead.regions) {
    const strip = document.querySelector(`#charts li[data-region='${region.id}'] .ahead`);
    if (!strip) continue;
    const hours = region.levels.map((level, i) => ({ level, t: ahead.start + i * 3600 }));
    const best = Math.min(...region.levels);
    const firstBest = hours.find((h) => h.level === best);
    const summary =
      `Energy level (${ahead.basis}), next ${hours.length} h: ${region.levels.join(", ")}; ` +
      `lowest ${best} from ${hourLabel(firstBest.t)}`;
    strip.setAttribute("aria-label", summary);
    strip.replaceChildren(
      ...hours.map((h, i) =>
        el(
          "span",
          {
            "data-level": h.level,
            title: `${i === 0 ? "now" : hourLabel(h.t)}: level ${h.level}`,
            // dark red (levels 8 and 9) takes white text for AA contrast; the rest #111
            style: `background: ${LEVEL_COLOURS[h.level]}; color: ${h.level >= 8 ? "#fff" : "#111"}`,
          },
          String(h.level),
        ),
      ),
    );
    strip.nextElementSibling.textContent = `next ${hours.length} h, lowest level ${best} from ${hourLabel(firstBest.t)}`;
  }
}

async function refreshAhead() {
  drawAhead(await api(`/dashboard/api/regions/ahead?hours=${AHEAD_HOURS}`));
}

async function refresh() {
  const [providers, regions] = await Promise.all([api("/v1/providers?limit=1000"), api("/v1/regions")]);
  drawRegions(regions);
  drawProviders(providers.items);
  drawTable(providers.items);
  return regions;
}

drawLegend();
await drawBase();
const regions = await refresh();
const history = await api("/dashboard/api/regions/history?hours=24");
drawCharts(history, regions);
await refreshAhead();
every(10000, refresh, { now: false });
every(10000, refreshAhead, { now: false });
