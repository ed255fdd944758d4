// The instructembed playground: plain JavaScript, no build step, no dependencies.
// It calls this server's own API (relative URLs, so it also works behind a path prefix):
//   GET  ../info              model, dimension, max length, precision, limits, index (if any)
//   POST ../v1/embeddings     {"input": [{"instruction": I, "text": T} | T, ...]}
//   POST ../v1/search         {"queries": [Q], "k": K, "instruction": I}   (only when /info has an index)
"use strict";

(function () {
  const API = { info: "../info", embeddings: "../v1/embeddings", search: "../v1/search" };
  const MAX_COMPARE_TEXTS = 100; // a heatmap is an N x N table; past this it stops being readable
  const DENSE_FROM = 13; // from this many texts, cell numbers are only on hover / for screen readers
  const MAX_INSTRUCTIONS = 6;
  const TIMEOUT_MS = 120000;
  const RETRY_INFO_MS = 2000;

  const state = { info: null, suggestions: [], examples: [], nextId: 1, savedDocInstruction: "" };
  const $ = (id) => document.getElementById(id);

  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value);
    }
    for (const child of children || []) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  // ---- talking to the server -----------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status, param, retryAfter) {
      super(message);
      this.status = status;
      this.param = param || null;
      this.retryAfter = retryAfter || null;
    }
  }

  async function call(method, path, body) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const key = $("api-key").value.trim();
    if (key) headers.Authorization = "Bearer " + key;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    let response;
    let text;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
        cache: "no-store",
      });
      text = await response.text();
    } catch (error) {
      if (error.name === "AbortError") {
        throw new ApiError(`The server did not answer within ${TIMEOUT_MS / 1000} seconds.`, 0);
      }
      throw new ApiError(`Could not reach the server (${error.message}). Is it still running?`, 0);
    } finally {
      clearTimeout(timer);
    }
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const detail = data && typeof data.error === "object" && data.error ? data.error : null;
      const message = detail && detail.message ? detail.message : text.slice(0, 300) || response.statusText;
      throw new ApiError(message, response.status, detail && detail.param, response.headers.get("Retry-After"));
    }
    if (data === null) throw new ApiError("The server's answer is not JSON.", response.status);
    return data;
  }

  const TITLES = {
    400: "Nothing to embed",
    401: "API key needed",
    404: "Not available on this server",
    413: "Too much text in one request",
    422: "The server refused the request",
    429: "The server is busy",
    500: "The server failed",
    503: "The server is not ready",
  };

  function bytes(n) {
    if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
    if (n >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
    return `${n} bytes`;
  }

  // `where(param)` turns the server's `param` (e.g. "input[7].text") into the page's words.
  function describe(error, where) {
    if (!(error instanceof ApiError)) return `Something went wrong in this page: ${error.message}`;
    if (!error.status) return error.message;
    const title = TITLES[error.status] || `The server answered ${error.status}`;
    const parts = [`${title} (HTTP ${error.status}): ${error.message}`];
    const place = error.param && where ? where(error.param) : null;
    if (place) parts.push(`(That is ${place}.)`);
    const limits = state.info && state.info.limits;
    if (error.status === 413 && limits) {
      parts.push(`This server takes at most ${bytes(limits.max_body_bytes)} per request: use fewer or shorter texts.`);
    }
    if (error.status === 429) {
      parts.push(`Nothing was embedded; try again in ${error.retryAfter || "a few"} second(s).`);
    }
    if (error.status === 401) {
      $("auth").hidden = false;
      parts.push("Enter the server's API key at the top of the page.");
    }
    return parts.join(" ");
  }

  function itemIndex(param) {
    const match = /^input\[(\d+)\]/.exec(param || "");
    return match ? Number(match[1]) : null;
  }

  function showError(which, message) {
    const box = $(`${which}-error`);
    box.textContent = message;
    box.hidden = false;
  }

  function clearError(which) {
    const box = $(`${which}-error`);
    box.textContent = "";
    box.hidden = true;
  }

  function setBusy(which, busy, message) {
    const button = $(which);
    button.disabled = busy;
    button.closest("section").setAttribute("aria-busy", busy ? "true" : "false");
    if (message !== undefined) $(`${which}-status`).textContent = message;
  }

  // ---- model info ------------------------------------------------------------------------------

  async function loadInfo() {
    let info;
    try {
      info = await call("GET", API.info);
    } catch (error) {
      const retry = error.status === 503 || error.status === 0;
      $("info-status").textContent = retry
        ? `${describe(error)} Retrying in ${RETRY_INFO_MS / 1000} s…`
        : describe(error);
      if (retry) setTimeout(loadInfo, RETRY_INFO_MS);
      return;
    }
    state.info = info;
    $("info-status").textContent = "";
    $("info-model").textContent = info.model;
    $("info-dimension").textContent = String(info.dimension);
    $("info-max-length").textContent = `${info.max_seq_length} tokens`;
    $("info-precision").textContent = info.precision || "not reported";
    $("info-backend").textContent = info.backend || "not reported";
    if (info.auth) $("auth").hidden = false;
    const index = info.index;
    if (index && typeof index === "object") {
      const count = typeof index.documents === "number" ? `${index.documents} documents` : "documents";
      $("index-label").textContent = `the server's index (${count})`;
      $("source-index").disabled = false;
    }
    const maxK = info.limits && info.limits.max_search_k;
    if (typeof maxK === "number") $("top-k").max = String(maxK);
    updateCount();
  }

  // ---- instruction suggestions (from the packaged instructor-large table) ----------------------

  function fillSuggestions(select, roles, placeholder) {
    select.replaceChildren(el("option", { value: "", text: placeholder }));
    for (const type of state.suggestions) {
      const options = type.suggestions.filter((s) => roles.includes(s.role));
      if (!options.length) continue;
      const group = el("optgroup", { label: type.name });
      for (const s of options) {
        const tasks = s.tasks.length > 2 ? `${s.tasks.slice(0, 2).join(", ")} +${s.tasks.length - 2}` : s.tasks.join(", ");
        const side = s.role === "corpus" ? "documents: " : s.role === "query" ? "queries: " : "";
        group.append(el("option", { value: s.instruction, text: `${s.instruction.trim()} (${side}${tasks})` }));
      }
      select.append(group);
    }
  }

  function linkSuggestions(select, area) {
    select.addEventListener("change", () => {
      if (select.value) area.value = select.value;
    });
    area.addEventListener("input", () => {
      select.value = "";
    });
  }

  async function loadSuggestions() {
    try {
      const table = await call("GET", "instructions.json");
      state.suggestions = table.task_types;
    } catch (error) {
      $("compare-status").textContent = `Instruction suggestions are unavailable: ${describe(error)}`;
      return;
    }
    for (const box of instructionBoxes()) {
      fillSuggestions(box.querySelector("select"), [null, "query", "corpus"], "Pick a suggestion…");
    }
    fillSuggestions($("query-suggestions"), ["query", null], "Pick a query instruction…");
    fillSuggestions($("doc-suggestions"), ["corpus", null], "Pick a document instruction…");
  }

  // ---- texts and example sets ------------------------------------------------------------------

  function readTexts() {
    return $("texts").value.split(/\r?\n/).filter((line) => line.trim() !== "");
  }

  function updateCount() {
    const n = readTexts().length;
    let message = `${n} text${n === 1 ? "" : "s"}`;
    if (n > MAX_COMPARE_TEXTS) message += `; the heatmaps show at most ${MAX_COMPARE_TEXTS}, search ranks them all`;
    const limits = state.info && state.info.limits;
    if (limits) message += ` (this server embeds up to ${limits.max_items_per_request} inputs per request)`;
    $("text-count").textContent = message;
  }

  async function loadExamples() {
    try {
      const data = await call("GET", "examples.json");
      state.examples = data.sets;
    } catch (error) {
      $("example").replaceChildren(el("option", { value: "", text: "no example sets" }));
      $("compare-status").textContent = `Example sets are unavailable: ${describe(error)}`;
      return;
    }
    $("example").replaceChildren(...state.examples.map((set) => el("option", { value: set.id, text: set.name })));
    if (!$("texts").value.trim()) applyExample(state.examples[0], false);
  }

  function applyExample(set, announce) {
    if (!set) return;
    $("texts").value = set.texts.join("\n");
    for (const box of instructionBoxes()) box.remove();
    for (const instruction of set.instructions) addInstruction(instruction, false);
    if (set.search && !$("source-index").checked) {
      $("query").value = set.search.query;
      $("query-instruction").value = set.search.query_instruction;
      $("doc-instruction").value = set.search.doc_instruction;
    }
    updateCount();
    if (announce) {
      $("compare-status").textContent = `Loaded “${set.name}”: ${set.texts.length} texts, ${set.instructions.length} instructions.`;
    }
  }

  // ---- instruction boxes -----------------------------------------------------------------------

  function instructionBoxes() {
    return Array.from($("instructions").querySelectorAll("fieldset.instruction"));
  }

  function renumber() {
    const boxes = instructionBoxes();
    boxes.forEach((box, i) => {
      box.querySelector("legend").textContent = `Instruction ${i + 1}`;
      const remove = box.querySelector("button.remove");
      remove.setAttribute("aria-label", `Remove instruction ${i + 1}`);
      remove.disabled = boxes.length <= 1;
    });
    $("add-instruction").disabled = boxes.length >= MAX_INSTRUCTIONS;
  }

  function addInstruction(value, focus) {
    if (instructionBoxes().length >= MAX_INSTRUCTIONS) return;
    const id = state.nextId++;
    const area = el("textarea", { id: `instruction-${id}`, rows: "2", spellcheck: "false", className: "instruction-text" });
    area.value = value || "";
    const select = el("select", { id: `suggest-${id}` });
    fillSuggestions(select, [null, "query", "corpus"], "Pick a suggestion…");
    linkSuggestions(select, area);
    const remove = el("button", { type: "button", className: "remove", text: "Remove" });
    const box = el("fieldset", { className: "instruction" }, [
      el("legend"),
      el("label", { for: area.id, text: "Instruction (leave empty for none)" }),
      area,
      el("label", { for: select.id, className: "small", text: "Suggestions by task type" }),
      select,
      remove,
    ]);
    remove.addEventListener("click", () => {
      const boxes = instructionBoxes();
      const at = boxes.indexOf(box);
      box.remove();
      renumber();
      const left = instructionBoxes();
      const next = left[Math.min(at, left.length - 1)];
      if (next) next.querySelector("textarea").focus();
      else $("add-instruction").focus();
    });
    $("instructions").append(box);
    renumber();
    if (focus) area.focus();
  }

  // ---- compare: one heatmap per instruction ----------------------------------------------------

  function item(instruction, text) {
    return instruction.trim() === "" ? text : { instruction, text };
  }

  function unit(vector) {
    let norm = 0;
    for (const x of vector) norm += x * x;
    norm = Math.sqrt(norm) || 1;
    return vector.map((x) => x / norm);
  }

  function dot(a, b) {
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
    return sum;
  }

  function embeddingsOf(data, count) {
    const rows = (data.data || []).slice().sort((a, b) => a.index - b.index).map((d) => d.embedding);
    if (rows.length !== count || rows.some((r) => !Array.isArray(r))) {
      throw new ApiError(`The server returned ${rows.length} embeddings for ${count} inputs.`, 0);
    }
    return rows.map(unit);
  }

  const BLUES = [
    [247, 251, 255],
    [198, 219, 239],
    [107, 174, 214],
    [33, 113, 181],
    [8, 48, 107],
  ];

  function colour(t) {
    const x = Math.min(1, Math.max(0, t)) * (BLUES.length - 1);
    const i = Math.min(BLUES.length - 2, Math.floor(x));
    const f = x - i;
    const rgb = BLUES[i].map((c, k) => Math.round(c + (BLUES[i + 1][k] - c) * f));
    return `rgb(${rgb.join(",")})`;
  }

  function shortText(text, length) {
    return text.length > length ? `${text.slice(0, length - 1)}…` : text;
  }

  function heatmap(texts, instruction, j, matrix, lo, hi) {
    const n = texts.length;
    const dense = n >= DENSE_FROM;
    const table = el("table", { className: dense ? "heatmap dense" : "heatmap" });
    table.append(el("caption", { className: "visually-hidden", text: `Cosine similarity between the texts under instruction ${j + 1}; rows and columns are text numbers.` }));
    const head = el("tr", {}, [el("td")]);
    texts.forEach((text, k) => head.append(el("th", { scope: "col", title: text, text: String(k + 1) })));
    table.append(el("thead", {}, [head]));
    const body = el("tbody");
    texts.forEach((text, i) => {
      const row = el("tr", {}, [el("th", { scope: "row", title: text, text: String(i + 1) })]);
      texts.forEach((_, k) => {
        const v = matrix[i][k];
        const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
        const cell = el("td", {
          title: `Text ${i + 1} and text ${k + 1}, instruction ${j + 1}: cosine ${v.toFixed(4)}`,
          className: i === k ? "self" : t > 0.55 ? "dark" : "",
          dataset: { row: String(i + 1), col: String(k + 1) },
        }, [el("span", { className: "v", text: v.toFixed(2) })]);
        if (i !== k) cell.style.backgroundColor = colour(t);
        row.append(cell);
      });
      body.append(row);
    });
    table.append(body);
    const label = instruction.trim() === "" ? "no instruction" : `“${instruction.trim()}”`;
    return el("figure", { className: "heatmap-figure", dataset: { instruction: String(j + 1) } }, [
      el("figcaption", {}, [el("strong", { text: `Instruction ${j + 1}: ` }), label]),
      el("div", { className: "scroll", tabindex: "0", role: "region", "aria-label": `Heatmap for instruction ${j + 1}` }, [table]),
    ]);
  }

  function nearest(matrix, i) {
    let best = -1;
    matrix[i].forEach((v, k) => {
      if (k !== i && (best < 0 || v > matrix[i][best])) best = k;
    });
    return best;
  }

  function neighbourTable(texts, matrices) {
    const table = el("table", { className: "neighbours" });
    table.append(el("caption", { text: "Most similar other text, under each instruction (a change is marked ◆)" }));
    const head = el("tr", {}, [el("th", { scope: "col", text: "Text" })]);
    matrices.forEach((_, j) => head.append(el("th", { scope: "col", text: `Instruction ${j + 1}` })));
    table.append(el("thead", {}, [head]));
    const body = el("tbody");
    texts.forEach((text, i) => {
      const row = el("tr", {}, [
        el("th", { scope: "row", title: text }, [`${i + 1}.`, el("span", { className: "snippet", text: ` ${shortText(text, 48)}` })]),
      ]);
      const first = nearest(matrices[0], i);
      matrices.forEach((m, j) => {
        const k = nearest(m, i);
        const changed = j > 0 && k !== first;
        row.append(el("td", { className: changed ? "changed" : "", title: texts[k] }, [
          `${changed ? "◆ " : ""}text ${k + 1} (${m[i][k].toFixed(2)})`,
        ]));
      });
      body.append(row);
    });
    table.append(body);
    return el("div", { className: "scroll", tabindex: "0", role: "region", "aria-label": "Nearest texts per instruction" }, [table]);
  }

  function changesList(texts, matrices, j) {
    const pairs = [];
    for (let a = 0; a < texts.length; a++) {
      for (let b = a + 1; b < texts.length; b++) {
        pairs.push([a, b, matrices[0][a][b], matrices[j][a][b]]);
      }
    }
    pairs.sort((p, q) => Math.abs(q[3] - q[2]) - Math.abs(p[3] - p[2]));
    const list = el("ul", { className: "changes" });
    for (const [a, b, before, after] of pairs.slice(0, 5)) {
      const delta = after - before;
      list.append(el("li", {}, [
        `Texts ${a + 1} and ${b + 1}: ${before.toFixed(2)} → ${after.toFixed(2)} (${delta >= 0 ? "+" : "−"}${Math.abs(delta).toFixed(2)})`,
      ]));
    }
    return el("div", { className: "change-block" }, [el("h4", { text: `Instruction 1 → instruction ${j + 1}: biggest changes` }), list]);
  }

  function renderCompare(texts, instructions, matrices) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const m of matrices) {
      m.forEach((row, i) => row.forEach((v, k) => {
        if (i !== k) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }));
    }
    if (!Number.isFinite(lo)) {
      lo = 0;
      hi = 1;
    }
    const out = $("compare-results");
    const key = el("ol", { className: "text-key" }, texts.map((t) => el("li", { text: t })));
    const legend = el("p", { className: "legend" }, [
      el("span", { className: "legend-bar", "aria-hidden": "true" }),
      ` Colour: ${lo.toFixed(2)} (lightest) to ${hi.toFixed(2)} (darkest), the same scale for every heatmap; the diagonal (a text with itself) is grey. Hover a cell, or read the table with a screen reader, for the exact cosine.`,
    ]);
    const maps = el("div", { className: "heatmaps" }, matrices.map((m, j) => heatmap(texts, instructions[j], j, m, lo, hi)));
    const parts = [
      el("h3", { text: "Similarity heatmaps" }),
      legend,
      el("details", { className: "key", open: texts.length <= 20 ? "" : null }, [el("summary", { text: "Texts by number" }), key]),
      maps,
    ];
    if (texts.length >= 3) parts.push(el("h3", { text: "Nearest neighbours" }), neighbourTable(texts, matrices));
    if (matrices.length >= 2 && texts.length >= 2) {
      parts.push(el("h3", { text: "What changed" }));
      for (let j = 1; j < matrices.length; j++) parts.push(changesList(texts, matrices, j));
    }
    out.replaceChildren(...parts);
  }

  async function compare(event) {
    event.preventDefault();
    clearError("compare");
    const texts = readTexts();
    const instructions = instructionBoxes().map((box) => box.querySelector("textarea").value);
    if (!texts.length) {
      showError("compare", "Enter at least one text (one per line), or load an example set.");
      return;
    }
    if (texts.length > MAX_COMPARE_TEXTS) {
      showError("compare", `The heatmaps compare at most ${MAX_COMPARE_TEXTS} texts and there are ${texts.length}. Remove some, or use Search below, which ranks all of them.`);
      return;
    }
    const input = [];
    for (const instruction of instructions) for (const text of texts) input.push(item(instruction, text));
    const n = texts.length;
    const where = (param) => {
      const k = itemIndex(param);
      return k === null ? null : `text ${(k % n) + 1} with instruction ${Math.floor(k / n) + 1}`;
    };
    setBusy("compare", true, `Embedding ${input.length} inputs (${n} texts × ${instructions.length} instructions)…`);
    const started = performance.now();
    try {
      const data = await call("POST", API.embeddings, { input });
      const vectors = embeddingsOf(data, input.length);
      const matrices = instructions.map((_, j) => {
        const block = vectors.slice(j * n, (j + 1) * n);
        return block.map((a) => block.map((b) => dot(a, b)));
      });
      renderCompare(texts, instructions, matrices);
      const tokens = data.usage ? `, ${data.usage.prompt_tokens} tokens` : "";
      $("compare-status").textContent = `Embedded ${input.length} inputs${tokens} in ${((performance.now() - started) / 1000).toFixed(2)} s.`;
    } catch (error) {
      $("compare-status").textContent = "";
      showError("compare", describe(error, where));
    } finally {
      setBusy("compare", false);
    }
  }

  // ---- search ----------------------------------------------------------------------------------

  function searchSource() {
    return $("source-index").checked ? "index" : "texts";
  }

  function onSourceChange() {
    const index = searchSource() === "index" && state.info && state.info.index;
    const doc = $("doc-instruction");
    if (index) {
      state.savedDocInstruction = doc.value;
      doc.value = index.doc_instruction || "";
      if (index.query_instruction !== undefined) $("query-instruction").value = index.query_instruction || "";
    } else if (doc.readOnly) {
      doc.value = state.savedDocInstruction;
    }
    doc.readOnly = Boolean(index);
    $("doc-suggestions").disabled = Boolean(index);
    $("doc-instruction-note").hidden = !index;
  }

  function resultItem(score, label, text, extra) {
    return el("li", { dataset: { score: String(score) } }, [
      el("span", { className: "score", text: score.toFixed(4) }),
      el("span", { className: "doc" }, [el("span", { className: "doc-label", text: label }), " ", el("span", { className: "doc-text", text })]),
      extra || null,
    ]);
  }

  async function search(event) {
    event.preventDefault();
    clearError("search");
    const query = $("query").value;
    const queryInstruction = $("query-instruction").value;
    const docInstruction = $("doc-instruction").value;
    let k = parseInt($("top-k").value, 10);
    if (!Number.isFinite(k) || k < 1) k = 10;
    const results = $("results");
    const started = performance.now();
    const took = () => `${((performance.now() - started) / 1000).toFixed(2)} s`;
    if (searchSource() === "index") {
      setBusy("search", true, "Searching the server's index…");
      try {
        const data = await call("POST", API.search, { queries: [query], k, instruction: queryInstruction });
        const hits = (data.data && data.data[0] && data.data[0].hits) || [];
        results.replaceChildren(...hits.map((hit) => {
          const where = hit.chunk ? ` (chunk ${hit.chunk}, characters ${hit.start}–${hit.end})` : "";
          const meta = hit.metadata && Object.keys(hit.metadata).length ? el("span", { className: "meta", text: JSON.stringify(hit.metadata) }) : null;
          return resultItem(hit.score, `${hit.id}${where}:`, hit.text == null ? "(the index stores no text)" : hit.text, meta);
        }));
        $("search-status").textContent = `${hits.length} hits from the index in ${took()}.`;
      } catch (error) {
        $("search-status").textContent = "";
        showError("search", describe(error, (param) => (param.startsWith("queries") ? "the query" : null)));
      } finally {
        setBusy("search", false);
      }
      return;
    }
    const texts = readTexts();
    if (!texts.length) {
      showError("search", "Enter texts in section 1 (one per line), or load an example set, to search them.");
      return;
    }
    const input = [item(queryInstruction, query), ...texts.map((t) => item(docInstruction, t))];
    const where = (param) => {
      const i = itemIndex(param);
      return i === null ? null : i === 0 ? "the query" : `text ${i}`;
    };
    setBusy("search", true, `Embedding the query and ${texts.length} texts…`);
    try {
      const data = await call("POST", API.embeddings, { input });
      const vectors = embeddingsOf(data, input.length);
      const ranked = texts.map((text, i) => ({ i, text, score: dot(vectors[0], vectors[i + 1]) }));
      ranked.sort((a, b) => b.score - a.score);
      results.replaceChildren(...ranked.slice(0, k).map((r) => resultItem(r.score, `text ${r.i + 1}:`, r.text)));
      $("search-status").textContent = `Ranked ${texts.length} texts in ${took()}; showing the top ${Math.min(k, texts.length)}.`;
    } catch (error) {
      $("search-status").textContent = "";
      showError("search", describe(error, where));
    } finally {
      setBusy("search", false);
    }
  }

  // ---- wiring ----------------------------------------------------------------------------------

  function start() {
    $("texts").addEventListener("input", updateCount);
    $("load-example").addEventListener("click", () => {
      applyExample(state.examples.find((s) => s.id === $("example").value), true);
    });
    $("add-instruction").addEventListener("click", () => addInstruction("", true));
    $("compare-form").addEventListener("submit", compare);
    $("search-form").addEventListener("submit", search);
    for (const radio of document.querySelectorAll('input[name="source"]')) radio.addEventListener("change", onSourceChange);
    linkSuggestions($("query-suggestions"), $("query-instruction"));
    linkSuggestions($("doc-suggestions"), $("doc-instruction"));
    addInstruction("", false);
    addInstruction("", false);
    loadInfo();
    loadSuggestions();
    loadExamples();
  }

  window.addEventListener("unhandledrejection", (event) => {
    showError("compare", `Something went wrong in this page: ${event.reason && event.reason.message}`);
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
