// The leaderboard page's behaviour (inlined by the template): sort by a column, filter rows, open details.
// Each entry is one <tbody> (its row and its details row), so sorting and filtering move them together.
"use strict";
(function () {
  const table = document.getElementById("board");
  const headers = Array.from(table.querySelectorAll("thead th[data-key]"));
  const entries = () => Array.from(table.querySelectorAll("tbody.entry"));

  function sortValue(entry, key, type) {
    const cell = entry.querySelector('tr.main td[data-key="' + key + '"]');
    const raw = cell ? cell.dataset.sort : "";
    if (raw === "") return null;  // failed, n/a or missing: always listed last
    return type === "num" ? parseFloat(raw) : raw.toLowerCase();
  }

  function sortBy(th, direction) {
    const key = th.dataset.key, type = th.dataset.type, sign = direction === "asc" ? 1 : -1;
    const decorated = entries().map((entry, index) => [sortValue(entry, key, type), index, entry]);
    decorated.sort((a, b) => {
      if (a[0] === null || b[0] === null) {
        return (a[0] === null) - (b[0] === null) || a[1] - b[1];
      }
      if (a[0] < b[0]) return -sign;
      if (a[0] > b[0]) return sign;
      return a[1] - b[1];  // stable: ties keep their current order
    });
    decorated.forEach((item) => table.appendChild(item[2]));
    headers.forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", direction === "asc" ? "ascending" : "descending");
  }

  headers.forEach((th) => th.addEventListener("click", () => {
    const current = th.getAttribute("aria-sort");
    const first = th.dataset.first;
    const next = current === null ? first : (current === "ascending" ? "desc" : "asc");
    sortBy(th, next);
  }));

  const filter = document.getElementById("filter");
  const team = document.getElementById("team-filter");
  const baselines = document.getElementById("show-baselines");
  const shown = document.getElementById("shown");

  function applyFilter() {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    let count = 0;
    const all = entries();
    all.forEach((entry) => {
      const visible = words.every((w) => entry.dataset.search.includes(w))
        && (team.value === "" || entry.dataset.team === team.value)
        && (baselines.checked || entry.dataset.baseline !== "true");
      entry.hidden = !visible;
      count += visible ? 1 : 0;
    });
    shown.textContent = count + " of " + all.length + " entries";
  }
  filter.addEventListener("input", applyFilter);
  team.addEventListener("change", applyFilter);
  baselines.addEventListener("change", applyFilter);

  table.querySelectorAll("button.toggle").forEach((button) => button.addEventListener("click", () => {
    const details = document.getElementById(button.getAttribute("aria-controls"));
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    details.hidden = !open;
  }));
})();
