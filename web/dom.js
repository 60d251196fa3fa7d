// Shared helpers of the dashboard's modules: building elements (text only, never HTML) and formatting numbers.

export const $ = (id) => document.getElementById(id);

/** Builds an element; children are nodes or text (never HTML, so topic names and data cannot inject markup). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    // CSSOM, not a style attribute: the page's CSP (style-src 'self') blocks inline style attributes.
    else if (key === "style") Object.assign(element.style, value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) element.append(child);
  }
  return element;
}

const numberFormat = new Intl.NumberFormat();
export const formatNumber = (value) => numberFormat.format(value);

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export function formatDuration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60 ? `${seconds % 60} s` : ""}`.trim();
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60 ? `${minutes % 60} min` : ""}`.trim();
  return `${Math.round(hours / 24)} d`;
}

export function formatRate(rate) {
  if (rate === null || rate === undefined) return "–";
  if (rate === 0) return "0";
  return rate < 10 ? rate.toFixed(1) : formatNumber(Math.round(rate));
}

export const plural = (count, word) => `${formatNumber(count)} ${word}${count === 1 ? "" : "s"}`;

/** `projects/p/topics/t` → `t`. */
export const shortName = (name) => name.slice(name.lastIndexOf("/") + 1);

export function emptyState(title, ...hint) {
  return h("div", { class: "empty" }, h("strong", {}, title), ...hint);
}

/** Replaces a select's options when the list changed, keeping the chosen value when it is still there. */
export function setOptions(select, options, placeholder) {
  const wanted = [placeholder ? "" : null, ...options.map(([value]) => value)].filter((v) => v !== null).join("\n");
  if ([...select.options].map((option) => option.value).join("\n") === wanted) return;
  const current = select.value;
  select.replaceChildren(
    ...(placeholder ? [h("option", { value: "" }, placeholder)] : []),
    ...options.map(([value, label]) => h("option", { value }, label)),
  );
  if (options.some(([value]) => value === current)) select.value = current;
}
