// rnnkit serve: the page. GET /runs says what is loaded; each route gets the widget its `panel` names
// (a generic form for a panel this page does not know). Plain JavaScript, no build step, nothing fetched
// from elsewhere. With an API key, open the page as /?key=KEY once: the server answers with a cookie.
"use strict";

const $ = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v; else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v); else el.setAttribute(k, v);
  }
  for (const c of children) el.append(c);
  return el;
};

async function errorText(resp) {
  try {
    const j = await resp.json();
    return `${resp.status}: ${j.error}` + (j.expected ? ` (expected: ${j.expected})` : "");
  } catch (e) { return `${resp.status} ${resp.statusText}`; }
}

async function postJSON(path, body) {
  const resp = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                  body: JSON.stringify(body)});
  if (!resp.ok) throw new Error(await errorText(resp));
  return resp.json();
}

async function postForm(path, fields, files) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) if (v !== "" && v !== undefined && v !== null) form.append(k, v);
  for (const [k, f] of Object.entries(files)) if (f) form.append(k, f.blob || f, f.name || `${k}.wav`);
  const resp = await fetch(path, {method: "POST", body: form});
  if (!resp.ok) throw new Error(await errorText(resp));
  return resp.json();
}

// Server-sent events over fetch (POST; EventSource only GETs): onEvent(payload) per `data:` event, payload
// {"text": piece} for text streams or the object a route streams. `body`: an object (JSON) or a FormData.
async function streamSSE(path, body, onEvent) {
  const init = body instanceof FormData ? {method: "POST", body}
    : {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const resp = await fetch(path, init);
  if (!resp.ok) throw new Error(await errorText(resp));
  const reader = resp.body.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) throw new Error("the stream ended before it was done");
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      const payload = data ? JSON.parse(data) : {};
      if (event === "error") throw new Error(`${payload.status}: ${payload.error}`);
      if (event === "done") return;
      onEvent(payload);
    }
  }
}

function field(label, input) { return $("label", {}, label + " ", input); }
function num(value, attrs = {}) { return $("input", {type: "number", value, ...attrs}); }
function numberOrSkip(input) { return input.value === "" ? undefined : Number(input.value); }

function runButton(ctx, label, work) {
  const button = $("button", {class: "go", text: label});
  button.addEventListener("click", async () => {
    button.disabled = true; ctx.error.hidden = true;
    try {
      await work();
      ctx.section.dataset.answered = String(Number(ctx.section.dataset.answered || 0) + 1);  // for tests and scripts
    } catch (e) { ctx.error.textContent = String(e.message || e); ctx.error.hidden = false; }
    finally { button.disabled = false; }
  });
  return button;
}

function b64url(b64, type) {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  return URL.createObjectURL(new Blob([bytes], {type}));
}

// ------------------------------------------------------------------------------------------ widgets

const PANELS = {};

PANELS.generate = (ctx) => {
  const prompt = $("textarea", {class: "prompt"}); prompt.value = ctx.route.example.prompt || "The ";
  const length = num(200, {min: 0}), temperature = num(0.8, {min: 0, step: 0.1});
  const out = $("div", {class: "output"});
  const go = runButton(ctx, "Generate", async () => {
    out.textContent = "";
    await streamSSE(ctx.route.stream, {prompt: prompt.value, length: Number(length.value),
                                       temperature: Number(temperature.value)},
                    piece => { out.textContent += piece.text; });
    ctx.shared.lastText = out.textContent;
    if (ctx.shared.showNeurons) ctx.shared.showNeurons(out.textContent);
  });
  ctx.body.append(prompt, field("length", length), field("temperature", temperature), go, out);
};

const unitColour = (v) => {  // tanh-range activation: blue (-1) .. white (0) .. red (+1)
  const a = Math.max(-1, Math.min(1, v)), s = Math.round(255 * (1 - Math.abs(a)));
  return a >= 0 ? `rgb(255,${s},${s})` : `rgb(${s},${s},255)`;
};

PANELS.neurons = (ctx) => {
  const text = $("textarea", {class: "neuron-input"}); text.value = ctx.route.example.text || "def f(x):\n    return x";
  const layer = num(0, {min: 0}), unit = num(0, {min: 0});
  const shown = $("div", {class: "neuron-text output"}), gates = $("div", {}), picks = $("div", {class: "note"});
  const scaleNote = $("div", {class: "note"});
  let data = null;
  const paint = () => {
    if (!data) return;
    const u = Math.min(Number(unit.value) || 0, data.units - 1);
    // coloured relative to the unit's largest |activation| over this text (named below), so that a unit
    // that barely moves still shows where it moves
    const scale = Math.max(...data.activations.map(r => Math.abs(r[u])), 1e-6);
    shown.textContent = "";
    data.tokens.forEach((tok, t) => {
      const v = data.activations[t][u];
      shown.append($("span", {style: `background:${unitColour(v / scale)}`, title: `unit ${u}: ${v}`, text: tok}));
    });
    scaleNote.textContent = `unit ${u}: blue -${scale.toFixed(3)} .. white 0 .. red +${scale.toFixed(3)}`;
  };
  const load = async (value) => {
    if (value !== undefined) text.value = value;
    data = await postJSON(ctx.route.path, {text: text.value, layer: Number(layer.value)});
    unit.max = data.units - 1;
    const spread = [...Array(data.units).keys()].map(u => {
      const col = data.activations.map(r => r[u]), mean = col.reduce((a, b) => a + b, 0) / col.length;
      return [u, col.reduce((a, b) => a + (b - mean) ** 2, 0)];
    }).sort((a, b) => b[1] - a[1]).slice(0, 8);
    picks.textContent = "most varying units: ";
    for (const [u] of spread) picks.append($("button", {class: "secondary", text: String(u),
                                                        onclick: () => { unit.value = u; paint(); }}));
    gates.textContent = "";
    const rows = Object.entries(data.saturation);
    if (rows.length) {
      const names = Object.keys(rows[0][1]);
      gates.append($("p", {class: "note", text: `gate saturation (share of activations < 0.05 or > 0.95), ${data.cell}:`}),
        $("table", {class: "small"}, $("tr", {}, $("th", {text: "layer"}), ...names.map(n => $("th", {text: n}))),
          ...rows.map(([l, g]) => $("tr", {}, $("td", {text: l}),
                                    ...names.map(n => $("td", {text: (100 * g[n]).toFixed(1) + "%"}))))));
    }
    paint();
  };
  unit.addEventListener("input", paint);
  ctx.shared.showNeurons = (generated) => load(generated).catch(e => {
    ctx.error.textContent = String(e.message || e); ctx.error.hidden = false; });
  ctx.body.append(text, field("layer", layer), field("unit", unit),
                  runButton(ctx, "Show activations", () => load()), picks, shown, scaleNote, gates);
};

function uploadInput(kind) {
  const accept = {audio: "audio/*,.wav,.flac,.ogg", image: "image/*", midi: ".mid,.midi,audio/midi"}[kind] || "";
  return $("input", {type: "file", accept});
}

PANELS.classify = (ctx) => {
  const out = $("div", {class: "output result"});
  const show = (rows) => {
    out.textContent = "";
    for (const r of rows) {
      out.append($("div", {class: "label", text: `${typeof r.input === "string" ? r.input : "input"} \u2192 ${r.label}`}));
      for (const [name, p] of Object.entries(r.probabilities).slice(0, 5))
        out.append($("div", {class: "bar"}, $("span", {class: "name", text: name}),
                     $("span", {class: "fill", style: `width:${Math.round(240 * p)}px`}),
                     $("span", {text: p.toFixed(3)})));
    }
  };
  if (Object.keys(ctx.route.uploads).length) {
    const file = uploadInput("audio");
    ctx.body.append(file, runButton(ctx, "Classify", async () =>
      show(await postForm(ctx.route.path, {}, {audio: file.files[0]}))), out);
    return;
  }
  const text = $("textarea", {class: "sentence"}); text.value = "I love it";
  ctx.body.append($("p", {class: "note", text: "one input per line"}), text, runButton(ctx, "Classify", async () => {
    const inputs = text.value.split("\n").filter(s => s.trim());
    show(await postJSON(ctx.route.path, {inputs}));
  }), out);
};

const PALETTE = ["#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6", "#a0c4ff", "#ffadad"];
PANELS.tag = (ctx) => {
  const text = $("input", {type: "text", size: 60, value: "Maria visited Lima last May ."});
  const out = $("div", {class: "output tokens"}), types = {};
  const colour = (t) => types[t] || (types[t] = PALETTE[Object.keys(types).length % PALETTE.length]);
  ctx.body.append(text, runButton(ctx, "Tag", async () => {
    const [r] = await postJSON(ctx.route.path, {inputs: [text.value]});
    out.textContent = "";
    let i = 0;
    for (const e of [...r.entities, {start: r.tokens.length, end: r.tokens.length}]) {
      for (; i < e.start; i++) out.append($("span", {class: "tok", title: r.tags[i], text: r.tokens[i]}), " ");
      if (e.type) {
        out.append($("span", {class: "ent", style: `background:${colour(e.type)}`}, e.text, $("sub", {text: e.type})), " ");
        i = e.end;
      }
    }
    out.append($("div", {class: "note", text: r.tokens.map((t, k) => `${t}/${r.tags[k]}`).join(" ")}));
  }), out);
};

function parseCSV(text) {
  const lines = text.trim().split(/\r?\n/).filter(l => l.trim());
  const head = lines[0].split(",").map(s => s.trim());
  return lines.slice(1).map(line => {
    const cells = line.split(","), row = {};
    head.forEach((h, k) => { const v = (cells[k] || "").trim(); row[h] = v === "" ? null : (isNaN(Number(v)) ? v : Number(v)); });
    return row;
  });
}

function linePlot(series) {  // series: [{points: [[x, y]], colour, band: [[x, lo, hi]]}]
  const W = 600, H = 220, P = 30;
  const xs = series.flatMap(s => s.points.map(p => p[0]));
  const ys = series.flatMap(s => [...s.points.map(p => p[1]), ...(s.band || []).flatMap(b => [b[1], b[2]])]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const X = x => P + (W - 2 * P) * (x - x0) / ((x1 - x0) || 1), Y = y => H - P - (H - 2 * P) * (y - y0) / ((y1 - y0) || 1);
  const ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("class", "plot");
  const add = (tag, attrs) => { const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v); svg.append(el); return el; };
  for (const s of series) {
    if (s.band && s.band.length) add("polygon", {fill: s.colour, opacity: 0.2, points:
      [...s.band.map(b => `${X(b[0])},${Y(b[2])}`), ...s.band.slice().reverse().map(b => `${X(b[0])},${Y(b[1])}`)].join(" ")});
    add("polyline", {fill: "none", stroke: s.colour, "stroke-width": 2, points: s.points.map(p => `${X(p[0])},${Y(p[1])}`).join(" ")});
  }
  add("text", {x: 4, y: 14, "font-size": 11, fill: "#5b6573"}).textContent = y1.toPrecision(4);
  add("text", {x: 4, y: H - 8, "font-size": 11, fill: "#5b6573"}).textContent = y0.toPrecision(4);
  return svg;
}

PANELS.forecast = (ctx) => {
  const rows = ctx.route.example.series || [];
  const cols = rows.length ? Object.keys(rows[0]) : [];
  const text = $("textarea", {class: "series", style: "min-height:120px"});
  text.value = [cols.join(","), ...rows.map(r => cols.map(c => r[c]).join(","))].join("\n");
  const out = $("div", {}), table = $("div", {class: "output"});
  ctx.body.append($("p", {class: "note", text: "the series to continue (CSV with the run's columns; the example is a made-up wave)"}),
    text, runButton(ctx, "Forecast", async () => {
      const series = parseCSV(text.value);
      const r = await postJSON(ctx.route.path, {series});
      const target = r.targets[0], n = series.length;
      const history = series.map((row, k) => [k, row[target]]).filter(p => p[1] !== null);
      const mine = r.forecast.filter(f => f.target === target);
      const fc = mine.map((f, h) => [n + h, f.forecast]);
      const band = mine.filter(f => f.lower !== undefined).map((f, h) => [n + h, f.lower, f.upper]);
      out.textContent = "";
      out.append(linePlot([{points: history.slice(-4 * r.lookback), colour: "#1d2430"},
                           {points: [history[history.length - 1], ...fc], colour: "#2f6fdf", band}]));
      table.textContent = r.forecast.map(f => Object.entries(f).map(([k, v]) =>
        `${k} ${typeof v === "number" ? v.toFixed(3) : v}`).join("  ")).join("\n");
    }), out, table);
};

function heatTable(rows, cols, matrix) {
  const table = $("table", {class: "heat"});
  table.append($("thead", {}, $("tr", {}, $("th"), ...cols.map(c => $("th", {text: c})))));
  matrix.forEach((row, i) => table.append($("tr", {}, $("th", {text: rows[i] || ""}),
    ...row.map(a => $("td", {title: a.toFixed(3), style: `background:rgba(47,111,223,${Math.min(1, a)})`})))));
  return table;
}

PANELS.translate = (ctx) => {
  const text = $("input", {type: "text", size: 50, value: (ctx.route.example.inputs || ["Hello."])[0]});
  const beam = num(5, {min: 1}), nbest = num(3, {min: 1});
  const out = $("div", {class: "output"}), heat = $("div", {});
  ctx.body.append(text, field("beam", beam), field("n-best", nbest), runButton(ctx, "Translate", async () => {
    const [r] = await postJSON(ctx.route.path, {inputs: [text.value], beam: Number(beam.value), nbest: Number(nbest.value)});
    out.textContent = ""; heat.textContent = "";
    r.nbest.forEach((h, k) => {
      const line = $("div", {class: "word", text: `${k + 1}. ${h.text}   (score ${h.score.toFixed(3)})`});
      line.addEventListener("click", () => { heat.textContent = "";
        if (h.attention) heat.append(heatTable(h.tokens, h.source_tokens, h.attention)); });
      out.append(line);
    });
    if (r.nbest[0] && r.nbest[0].attention) heat.append(heatTable(r.nbest[0].tokens, r.nbest[0].source_tokens, r.nbest[0].attention));
  }), out, heat);
};

// Recording: the microphone through Web Audio into PCM, written as a 16-bit mono WAV (no codec needed).
function recorder() {
  let ctx = null, source = null, node = null, chunks = [], stream = null;
  return {
    async start() {
      stream = await navigator.mediaDevices.getUserMedia({audio: true});
      ctx = new AudioContext(); source = ctx.createMediaStreamSource(stream);
      node = ctx.createScriptProcessor(4096, 1, 1); chunks = [];
      node.onaudioprocess = e => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
      source.connect(node); node.connect(ctx.destination);
    },
    stop() {
      source.disconnect(); node.disconnect(); stream.getTracks().forEach(t => t.stop());
      const n = chunks.reduce((a, c) => a + c.length, 0), rate = ctx.sampleRate;
      const buf = new DataView(new ArrayBuffer(44 + 2 * n));
      const str = (o, s) => [...s].forEach((c, i) => buf.setUint8(o + i, c.charCodeAt(0)));
      str(0, "RIFF"); buf.setUint32(4, 36 + 2 * n, true); str(8, "WAVEfmt "); buf.setUint32(16, 16, true);
      buf.setUint16(20, 1, true); buf.setUint16(22, 1, true); buf.setUint32(24, rate, true);
      buf.setUint32(28, 2 * rate, true); buf.setUint16(32, 2, true); buf.setUint16(34, 16, true);
      str(36, "data"); buf.setUint32(40, 2 * n, true);
      let o = 44;
      for (const c of chunks) for (const v of c) { buf.setInt16(o, Math.max(-1, Math.min(1, v)) * 32767, true); o += 2; }
      ctx.close();
      return new File([buf], "recording.wav", {type: "audio/wav"});
    },
  };
}

function audioSource(ctx) {  // a file input and a record button; .get() -> the chosen or recorded file
  const file = uploadInput("audio"), rec = recorder(), note = $("span", {class: "note"});
  let recorded = null, recording = false;
  const button = $("button", {class: "secondary", text: "Record"});
  button.addEventListener("click", async () => {
    try {
      if (!recording) { await rec.start(); recording = true; button.textContent = "Stop"; note.textContent = " recording\u2026"; }
      else { recorded = rec.stop(); recording = false; button.textContent = "Record"; note.textContent = " recorded"; }
    } catch (e) { ctx.error.textContent = `microphone: ${e.message || e}`; ctx.error.hidden = false; }
  });
  file.addEventListener("change", () => { recorded = null; note.textContent = ""; });
  return {elements: [file, button, note], get: () => recorded || file.files[0]};
}

PANELS.transcribe = (ctx) => {
  const src = audioSource(ctx), out = $("div", {class: "output"});
  const field0 = Object.keys(ctx.route.uploads)[0];
  ctx.body.append(...src.elements, $("br"), runButton(ctx, "Transcribe", async () => {
    const f = src.get();
    if (!f) throw new Error("choose or record an audio file first");
    const asks = (ctx.route.input.properties || {}).timings ? {timings: "true"} : {};  // word timings where offered
    const r = await postForm(ctx.route.path, asks, {[field0]: f});
    out.textContent = r.text + (r.words ? "\n\n" + r.words.map(w => `${w.word} ${w.start}-${w.end}s`).join("\n") : "");
  }), out);
};

function playAudio(r, out) {  // an answer with "wav" (or "audio") as base64
  const b64 = r.wav || r.audio;
  if (b64) out.append($("audio", {controls: "", src: b64url(b64, "audio/wav")}));
}

PANELS.speak = (ctx) => {  // text in (or an uploaded voice, for voice translation), speech out
  const props = ctx.route.input.properties || {}, uploads = Object.keys(ctx.route.uploads);
  const textName = Object.keys(props).find(k => props[k].type === "string" && !uploads.includes(k));
  const text = textName ? $("input", {type: "text", size: 50, value: ctx.route.example[textName] || "Hello."}) : null;
  const src = uploads.length ? audioSource(ctx) : null, out = $("div", {class: "output"});
  ctx.body.append(...(text ? [text] : []), ...(src ? src.elements : []), runButton(ctx, "Speak", async () => {
    const r = src ? await postForm(ctx.route.path, textName ? {[textName]: text.value} : {}, {[uploads[0]]: src.get()})
                  : await postJSON(ctx.route.path, {[textName]: text.value});
    out.textContent = Object.entries(r).filter(([k, v]) => typeof v !== "string" || v.length < 300)
      .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("\n");
    playAudio(r, out);
  }), out);
};

PANELS.caption = (ctx) => {  // answer: {caption, words?, attention?: [word][cell], grid?: [rows, cols]}
  const file = uploadInput("image"), out = $("div", {class: "output"}), box = $("div", {class: "caption-box"});
  const field0 = Object.keys(ctx.route.uploads)[0];
  ctx.body.append(file, runButton(ctx, "Caption", async () => {
    if (!file.files[0]) throw new Error("choose an image first");
    const r = await postForm(ctx.route.path, {}, {[field0]: file.files[0]});
    const img = $("img", {src: URL.createObjectURL(file.files[0])}), canvas = $("canvas");
    box.textContent = ""; box.append(img, canvas); out.textContent = "";
    const words = r.words || (r.caption || r.text || "").split(" ");
    words.forEach((w, k) => {
      const span = $("span", {class: "word", text: w});
      span.addEventListener("mouseenter", () => {
        out.querySelectorAll(".word").forEach(s => s.classList.remove("on")); span.classList.add("on");
        if (!r.attention || !r.grid) return;
        const [gh, gw] = r.grid, c = canvas.getContext("2d");
        canvas.width = img.width; canvas.height = img.height; c.clearRect(0, 0, img.width, img.height);
        const a = r.attention[k], top = Math.max(...a);
        a.forEach((v, i) => { c.fillStyle = `rgba(255,200,0,${v / (top || 1)})`;
          c.fillRect((i % gw) * img.width / gw, Math.floor(i / gw) * img.height / gh, img.width / gw, img.height / gh); });
      });
      out.append(span, " ");
    });
  }), box, out);
};

function drawRoll(canvas, roll) {
  const pitches = roll.flat(), lo = Math.min(...pitches, 60), hi = Math.max(...pitches, 72);
  canvas.width = Math.max(roll.length * 6, 300); canvas.height = 160;
  const c = canvas.getContext("2d"), w = canvas.width / roll.length, h = canvas.height / (hi - lo + 1);
  c.fillStyle = "#7fd1ff";
  roll.forEach((frame, t) => frame.forEach(p => c.fillRect(t * w, canvas.height - (p - lo + 1) * h, w - 1, Math.max(h - 1, 1))));
}

PANELS.music = (ctx) => {  // streamed: the roll drawn frame by frame, then the piece played
  const length = num(ctx.route.example.length || 64, {min: 1}), temperature = num(1.0, {min: 0, step: 0.1});
  const seed = num("", {}), primer = uploadInput("midi");
  const out = $("div", {}), canvas = $("canvas", {class: "roll"});
  ctx.body.append(field("frames", length), field("temperature", temperature), field("seed", seed),
                  field("primer (optional)", primer), runButton(ctx, "Generate", async () => {
    const fields = {length: Number(length.value), temperature: Number(temperature.value), seed: numberOrSkip(seed)};
    let body = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
    if (primer.files[0]) {
      body = new FormData();
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) body.append(k, v);
      body.append("primer", primer.files[0], primer.files[0].name);
    }
    const roll = [];
    let r = null;
    out.textContent = "sampling\u2026";
    const onEvent = (e) => {
      if (e.piece) { r = e.piece; return; }
      roll.push(e.pitches); drawRoll(canvas, roll);
    };
    if (ctx.route.stream) await streamSSE(ctx.route.stream, body, onEvent);
    else r = body instanceof FormData ? await postForm(ctx.route.path, fields, {primer: primer.files[0]})
                                      : await postJSON(ctx.route.path, body);
    out.textContent = `${r.frames} frames (${r.primer_frames} primer), polyphony ${r.stats.polyphony.toFixed(2)}`;
    playAudio(r, out);
    out.append($("a", {href: b64url(r.midi, "audio/midi"), download: "piece.mid", text: "download MIDI"}));
    drawRoll(canvas, r.roll);
  }), out, canvas);
};

PANELS.form = (ctx) => {  // any route: a field per property of its schema, the answer as JSON
  const props = ctx.route.input.properties || {}, inputs = {};
  for (const [name, s] of Object.entries(props)) {
    const input = ctx.route.uploads[name] ? uploadInput(ctx.route.uploads[name])
      : $("input", {type: "text", size: 40, placeholder: s.description || s.type || ""});
    if (!ctx.route.uploads[name] && ctx.route.example[name] !== undefined)
      input.value = typeof ctx.route.example[name] === "string" ? ctx.route.example[name] : JSON.stringify(ctx.route.example[name]);
    inputs[name] = input;
    ctx.body.append(field(name, input), $("br"));
  }
  const out = $("div", {class: "output"});
  ctx.body.append(runButton(ctx, "Send", async () => {
    const fields = {}, files = {};
    for (const [name, input] of Object.entries(inputs)) {
      if (ctx.route.uploads[name]) { files[name] = input.files[0]; continue; }
      if (input.value === "") continue;
      const type = props[name].type;
      fields[name] = type === "string" ? input.value : JSON.parse(input.value);
    }
    const r = Object.keys(ctx.route.uploads).length ? await postForm(ctx.route.path, fields, files)
                                                    : await postJSON(ctx.route.path, fields);
    out.textContent = JSON.stringify(r, null, 1);
  }), out);
};

// --------------------------------------------------------------------------------------------- page

async function main() {
  const main = document.getElementById("runs"), template = document.getElementById("panel");
  const resp = await fetch("/runs");
  if (!resp.ok) { document.getElementById("loading").textContent = await errorText(resp); return; }
  const runs = await resp.json();
  main.textContent = "";
  for (const run of runs) {
    const shared = {};
    // neurons first, so that the generate panel finds it to colour what it wrote
    const routes = [...run.routes].sort((a, b) => (b.panel === "neurons") - (a.panel === "neurons"));
    const panels = [];
    for (const route of routes) {
      const el = template.content.firstElementChild.cloneNode(true);
      el.dataset.run = run.name; el.dataset.route = route.name; el.dataset.panel = route.panel;
      el.querySelector(".run").textContent = run.name;
      el.querySelector(".task").textContent = run.task;
      el.querySelector(".route").textContent = route.name;
      el.querySelector(".summary").textContent = route.summary;
      const ctx = {run, route, shared, section: el, body: el.querySelector(".body"), error: el.querySelector(".error")};
      (PANELS[route.panel] || PANELS.form)(ctx);
      panels.push([run.routes.indexOf(route), el]);
    }
    panels.sort((a, b) => a[0] - b[0]).forEach(([, el]) => main.append(el));
  }
  document.body.dataset.ready = "1";
}

main().catch(e => { document.getElementById("runs").textContent = `could not load the runs: ${e.message || e}`; });
