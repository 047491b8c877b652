/* mmreward report: a sample browser over the JSON embedded in the page.
 * Every string from the data goes into the page through textContent (never innerHTML): prompts and model
 * output are hostile. The list renders in chunks as it scrolls, so thousands of samples open quickly. */
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const MEDIA = JSON.parse(document.getElementById("report-media").textContent);
  const SAMPLES = DATA.samples || [];
  const MODE = DATA.mode;
  const CHUNK = 100;
  const state = { view: [], shown: 0, sel: -1, dim: "" };
  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function fmt(x) { return typeof x === "number" ? (Math.abs(x) >= 1000 ? x.toFixed(0) : x.toFixed(4)) : (x === null || x === undefined ? "n/a" : String(x)); }
  function src(key) { return MEDIA[key] || key; }
  function img(key, alt) {
    const node = el("img");
    node.loading = "lazy";
    node.alt = alt || "";
    node.src = src(key);
    return node;
  }

  /* ---- per-sample values under the chosen dimension ------------------------------------------------------ */
  function margin(s) {
    if (!state.dim) return typeof s.margin === "number" ? s.margin : null;
    const v = s.scores && s.scores[state.dim];
    return Array.isArray(v) ? v[0] - v[1] : null;
  }
  function label(s) { return state.dim ? (s.dims ? s.dims[state.dim] : undefined) : s.label; }
  function preferred(s) {
    if (!state.dim) return s.pref;
    const m = margin(s);
    return m === null ? null : m > 0 ? "A" : m < 0 ? "B" : "tie";
  }
  function correct(s) {
    if (MODE !== "pairs") return s.ok;
    const l = label(s), p = preferred(s);
    if (!["A", "B", "tie"].includes(l) || !["A", "B", "tie"].includes(p)) return null;
    return l === p;
  }
  function haystack(s) {
    if (s._h === undefined) s._h = ((s.id || "") + "\n" + (s.prompt || "")).toLowerCase();
    return s._h;
  }

  /* ---- header: run, metrics, protocol, plots ------------------------------------------------------------- */
  function overview() {
    const sm = DATA.summary || {};
    const bits = [];
    for (const k of ["model", "scorer", "items", "data", "revision"]) if (sm[k] !== undefined) bits.push(k + ": " + sm[k]);
    if (sm.failures) bits.push("failures: " + Object.entries(sm.failures).map(([k, v]) => v + " " + k).join(", "));
    $("run").textContent = bits.join(" · ");
    const table = $("metrics");
    table.appendChild(el("tr")).append(el("th", "", "metric"), el("th", "", "value"));
    for (const [name, value] of [...(sm.metrics || []), ...(sm.probes || []).map(([n, v]) => ["probe " + n, v])]) {
      const tr = el("tr");
      tr.append(el("td", "", name), el("td", "v", fmt(value)));
      table.appendChild(tr);
    }
    const dl = el("dl");
    for (const k of ["protocol", "protocol_summary", "sampling_contract"]) {
      if (!sm[k]) continue;
      dl.append(el("dt", "", k.replace("_", " ")), el("dd", "", JSON.stringify(sm[k])));
    }
    $("protocol").appendChild(dl);
    for (const p of DATA.plots || []) $("plots").appendChild(img(p.src, p.name));
  }

  function controls() {
    const cats = {};
    const dims = new Set();
    for (const s of SAMPLES) {
      if (s.cat !== null && s.cat !== undefined) cats[s.cat] = (cats[s.cat] || 0) + 1;
      for (const d of Object.keys(s.scores || {})) if (d !== "overall") dims.add(d);
    }
    for (const c of Object.keys(cats).sort()) {
      const o = el("option", "", c + " (" + cats[c] + ")");
      o.value = c;
      $("f-category").appendChild(o);
    }
    for (const d of [...dims].sort()) {
      const o = el("option", "", d);
      o.value = d;
      $("f-dimension").appendChild(o);
    }
    if (MODE !== "pairs") for (const id of ["f-inconsistent", "f-dimension", "sort"]) $(id).closest("label").hidden = true;
    if (MODE === "traces") $("f-wrong").closest("label").hidden = true;
    for (const id of ["f-wrong", "f-unparsed", "f-inconsistent", "f-category", "f-dimension", "sort"])
      $(id).addEventListener("change", apply);
    $("search").addEventListener("input", apply);
    // Escape in a search box clears it with a "search" event, not "input".
    $("search").addEventListener("search", apply);
  }

  /* ---- filtering, sorting, incremental list -------------------------------------------------------------- */
  function apply() {
    state.dim = $("f-dimension").value;
    const q = $("search").value.trim().toLowerCase();
    const wrong = $("f-wrong").checked, unparsed = $("f-unparsed").checked;
    const inconsistent = $("f-inconsistent").checked, cat = $("f-category").value;
    let view = SAMPLES.filter((s) =>
      (!q || haystack(s).includes(q)) &&
      (!wrong || correct(s) === false) &&
      (!unparsed || s.fail === "unparsed") &&
      (!inconsistent || s.cons === false) &&
      (!cat || String(s.cat) === cat) &&
      (!state.dim || label(s) !== undefined && label(s) !== null));
    const sort = $("sort").value;
    if (sort !== "index") {
      const sign = sort === "margin-desc" ? -1 : 1;
      const key = (s) => { const m = margin(s); return m === null ? Infinity : Math.abs(m); };
      view = view.slice().sort((a, b) => {
        const x = key(a), y = key(b);
        if (x === Infinity || y === Infinity) return x === y ? a.i - b.i : x === Infinity ? 1 : -1;
        return sign * (x - y) || a.i - b.i;
      });
    }
    state.view = view;
    state.shown = 0;
    state.sel = -1;
    $("list").replaceChildren();
    $("count").textContent = view.length + " of " + SAMPLES.length + " samples";
    more();
    if (view.length) select(0); else $("detail").replaceChildren(el("p", "empty", "No sample matches the filters."));
  }

  function mark(s) {
    if (s.err && s.fail !== "unparsed") return el("span", "mark warn", "!");
    if (s.fail === "unparsed") return el("span", "mark warn", "?");
    const ok = correct(s);
    return ok === true ? el("span", "mark ok", "✓") : ok === false ? el("span", "mark bad", "✗") : el("span", "mark muted", "·");
  }

  function firstFrames(s) {
    const out = [];
    for (const side of [s.a, s.b]) {
      const m = side && side.media && side.media[0];
      if (m && m.frames && m.frames.length) out.push(m.frames[0].src);
    }
    if (s.media && s.media[0] && s.media[0].frames.length) out.push(s.media[0].frames[0].src);
    return out;
  }

  function row(s, pos) {
    const r = el("div", "row");
    r.dataset.pos = pos;
    r.setAttribute("role", "option");
    const mid = el("div");
    const head = el("div");
    head.append(el("span", "pid", s.id));
    if (MODE === "pairs") {
      const m = margin(s);
      head.append(el("span", "muted", "  label " + fmt(label(s)) + " · pref " + fmt(preferred(s)) + " · margin " + fmt(m)));
      if (s.cons === false) head.append(el("span", "badge warn", "flips"));
    } else if (MODE === "listwise") {
      head.append(el("span", "muted", "  score " + fmt(s.score) + (s.rank !== undefined ? " · rank " + fmt(s.rank) : "")));
    } else if (s.trace) {
      head.append(el("span", "muted", "  " + (s.trace.finish_reason || "") + " · " + (s.trace.turns || 0) + " turns"));
    }
    if (s.cat !== null && s.cat !== undefined) head.append(el("span", "badge muted", s.cat));
    mid.append(head, el("div", "pr", s.prompt || s.err || ""));
    const th = el("div", "thumbs");
    for (const key of firstFrames(s)) th.appendChild(img(key, ""));
    r.append(mark(s), mid, th);
    r.addEventListener("click", () => select(pos));
    return r;
  }

  function more() {
    const list = $("list");
    const old = $("sentinel");
    if (old) old.remove();
    const end = Math.min(state.view.length, state.shown + CHUNK);
    const frag = document.createDocumentFragment();
    for (let k = state.shown; k < end; k++) frag.appendChild(row(state.view[k], k));
    list.appendChild(frag);
    state.shown = end;
    if (end < state.view.length) {
      const sentinel = el("div", "", "showing " + end + " of " + state.view.length + " — scroll for more");
      sentinel.id = "sentinel";
      list.appendChild(sentinel);
      observer.observe(sentinel);
    }
  }
  const observer = new IntersectionObserver((entries) => {
    for (const e of entries) if (e.isIntersecting) { observer.unobserve(e.target); more(); }
  }, { root: $("list") });

  function select(pos) {
    if (pos < 0 || pos >= state.view.length) return;
    while (pos >= state.shown) more();
    const list = $("list");
    const prev = list.querySelector(".row.sel");
    if (prev) prev.classList.remove("sel");
    const r = list.querySelector('.row[data-pos="' + pos + '"]');
    r.classList.add("sel");
    r.scrollIntoView({ block: "nearest" });
    state.sel = pos;
    detail(state.view[pos]);
  }

  /* ---- detail: prompt, candidates, scores, samples, trajectories ---------------------------------------- */
  function mediaBlock(m) {
    const box = el("div", "media");
    const note = [m.kind, m.path];
    if (m.sampled) note.push(m.frames.length + " of " + m.sampled + " sampled frames shown (" + fmt(m.fps) + " fps)");
    box.appendChild(el("div", "muted", note.join(" · ")));
    if (m.error) box.appendChild(el("div", "failure", "media failure: " + m.error));
    if (m.note) box.appendChild(el("div", "muted", m.note));
    const frames = el("div", "frames");
    for (const f of m.frames || []) {
      const fig = el("figure");
      fig.append(img(f.src, m.path), el("figcaption", "", f.t !== undefined ? "t=" + f.t.toFixed(2) + "s" : ""));
      frames.appendChild(fig);
    }
    box.appendChild(frames);
    return box;
  }

  function candidate(name, c, s) {
    const box = el("div", "cand" + (preferred(s) === name ? " win" : ""));
    const l = label(s);
    box.appendChild(el("h3", "", name + (l === name ? "  (labelled better)" : "") + (preferred(s) === name ? "  ← model prefers" : "")));
    for (const m of (c && c.media) || []) box.appendChild(mediaBlock(m));
    if (c && c.text) box.appendChild(el("div", "resp", c.text));
    const sc = s.scores || {};
    const rows = Object.entries(sc).filter(([, v]) => Array.isArray(v));
    if (rows.length) {
      const t = el("table", "samples");
      for (const [d, v] of rows) {
        const tr = el("tr");
        tr.append(el("td", "", d), el("td", "", fmt(v[name === "A" ? 0 : 1])));
        t.appendChild(tr);
      }
      box.appendChild(t);
    }
    return box;
  }

  function longText(text, role) {
    // The judge's instructions are the same long text in every sample: folded, one click away.
    if (role === "assistant" || !text || text.length <= 400) return el("div", "text", text);
    const box = el("details", "long");
    box.append(el("summary", "", text.slice(0, 120).replace(/\s+/g, " ") + " … (" + text.length + " characters)"), el("div", "text", text));
    return box;
  }

  function traceBlock(t, title) {
    const box = el("div", "trace");
    box.appendChild(el("div", "", title));
    const facts = [t.finish_reason && "finished: " + t.finish_reason, t.turns !== undefined && t.turns + " turns",
      t.tool_calls !== undefined && t.tool_calls + " tool calls (" + (t.tool_failures || 0) + " failed)",
      t.template && "template " + t.template].filter(Boolean);
    box.appendChild(el("div", "muted", facts.join(" · ")));
    if (t.error) box.appendChild(el("div", "failure", t.error));
    for (const m of t.messages || []) {
      const msg = el("div", "msg " + m.role);
      msg.appendChild(el("div", "role", m.role));
      let frames = null;
      const parts = m.parts || [];
      for (let k = 0; k < parts.length; k++) {
        const p = parts[k];
        const next = parts[k + 1];
        // A frame's timestamp label ("t=1.5s") right before its image becomes the image's caption.
        const stamp = "text" in p && /^t=\S+s$/.test(p.text || "") && next && ("image" in next || "evicted" in next);
        if ("image" in p || "evicted" in p || stamp) {
          const q = stamp ? next : p;
          if (stamp) k++;
          if (!frames) { frames = el("div", "frames"); msg.appendChild(frames); }
          const gone = "evicted" in q;
          const fig = el("figure", gone ? "evicted" : "");
          const key = gone ? q.evicted : q.image;
          if (key) fig.appendChild(img(key, gone ? "evicted frame" : "frame"));
          const caption = [stamp ? p.text : "", gone ? "evicted" : (key ? "" : q.note || "image not kept")];
          fig.appendChild(el("figcaption", "", caption.filter(Boolean).join(" · ")));
          if (gone) fig.title = "evicted by the memory window: the judge no longer saw this image in later turns";
          frames.appendChild(fig);
          continue;
        }
        frames = null;
        if ("think" in p) msg.appendChild(el("div", "think", p.think));
        else if ("answer" in p) msg.appendChild(el("div", "answer", p.answer));
        else msg.appendChild(longText(p.text, m.role));
      }
      for (const c of m.calls || []) msg.appendChild(el("div", "call", "→ " + c.name + "(" + c.arguments + ")"));
      box.appendChild(msg);
    }
    if (t.verdict) box.appendChild(el("div", "answer", "verdict: " + JSON.stringify(t.verdict)));
    if (t.parse_error || !t.verdict) box.appendChild(el("div", "failure", "parse failure: " + (t.parse_error || "no verdict (" + (t.finish_reason || "?") + ")")));
    if (t.cut) box.appendChild(el("div", "muted", "cut for size: " + JSON.stringify(t.cut)));
    return box;
  }

  function detail(s) {
    const d = $("detail");
    d.replaceChildren();
    const h = el("h2", "", s.id + "  ");
    const ok = correct(s);
    h.appendChild(el("span", ok === true ? "badge ok" : ok === false ? "badge bad" : "badge muted",
      ok === true ? "correct" : ok === false ? "wrong" : s.fail ? s.fail : "not scored against a label"));
    if (s.cons === false) h.appendChild(el("span", "badge warn", "position-inconsistent"));
    d.appendChild(h);
    if (s.prompt) d.appendChild(el("div", "prompt", s.prompt));
    if (s.err) d.appendChild(el("div", "failure", (s.fail === "unparsed" ? "parse failure: " : "error: ") + s.err));
    if (MODE === "pairs") {
      d.appendChild(el("div", "muted", "label " + fmt(label(s)) + " · preferred " + fmt(preferred(s)) + " · margin (A − B) " + fmt(margin(s)) +
        (state.dim ? " · dimension " + state.dim : "") + (s.pf ? " · " + s.pf + " failed samples" : "")));
      for (const m of s.shared || []) d.appendChild(mediaBlock(m));
      const cands = el("div", "cands");
      cands.append(candidate("A", s.a, s), candidate("B", s.b, s));
      d.appendChild(cands);
      if (s.samples && s.samples.length) {
        const t = el("table", "samples");
        const hr = el("tr");
        for (const c of ["repeat", "order", "preferred", "margin", "error"]) hr.appendChild(el("th", "", c));
        t.appendChild(hr);
        for (const x of s.samples) {
          const tr = el("tr");
          for (const v of [x.repeat, x.order, x.pref, fmt(x.margin), x.err || ""]) tr.appendChild(el("td", "", v));
          t.appendChild(tr);
        }
        d.appendChild(t);
        for (const x of s.samples) if (x.trace) d.appendChild(traceBlock(x.trace, "Trajectory · order " + x.order + " · repeat " + x.repeat));
      }
    } else {
      if (MODE === "listwise") d.appendChild(el("div", "muted", "score " + fmt(s.score) + " · rank " + fmt(s.rank)));
      for (const m of s.media || []) d.appendChild(mediaBlock(m));
      if (s.response) d.appendChild(el("div", "resp", s.response));
      if (s.trace) d.appendChild(traceBlock(s.trace, "Trajectory"));
    }
  }

  /* ---- keyboard ----------------------------------------------------------------------------------------- */
  document.addEventListener("keydown", (e) => {
    const typing = e.target && (e.target.tagName === "INPUT" || e.target.tagName === "SELECT");
    if (typing) { if (e.key === "Escape") e.target.blur(); return; }
    if (e.key === "/") { e.preventDefault(); $("search").focus(); }
    else if (e.key === "j" || e.key === "ArrowDown") { e.preventDefault(); select(state.sel + 1); }
    else if (e.key === "k" || e.key === "ArrowUp") { e.preventDefault(); select(state.sel - 1); }
  });

  overview();
  controls();
  apply();
  document.body.dataset.ready = "1";
})();
