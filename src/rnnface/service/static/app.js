// The rnnface web page: plain fetch() calls to /api/v1 and a canvas for boxes and names. No dependencies.
"use strict";

const api = "/api/v1";
const $ = (id) => document.getElementById(id);

function headers() {
  const key = $("api-key").value;
  return key ? { "X-API-Key": key } : {};
}

async function call(method, path, body) {
  const response = await fetch(api + path, { method, body, headers: headers() });
  const data = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  if (!response.ok) throw Object.assign(new Error(data.detail || `HTTP ${response.status}`), { status: response.status });
  return data;
}

function showError(element, error) {
  element.textContent = "error: " + error.message;
  element.className = "result error";
}

// -- identify: file or camera photo -> boxes and names on a canvas --------------------------------
let cameraBlob = null;

async function drawIdentified(blob, faces) {
  const bitmap = await createImageBitmap(blob);
  const canvas = $("identify-canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  const line = Math.max(2, Math.round(bitmap.width / 250));
  ctx.lineWidth = line;
  ctx.font = `${6 * line + 6}px system-ui, sans-serif`;
  for (const face of faces) {
    const [x1, y1, x2, y2] = face.box;
    const known = face.name !== "unknown";
    ctx.strokeStyle = known ? "#12b34a" : "#ff9800";
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const best = face.matches.length ? ` ${face.matches[0].similarity.toFixed(2)}` : "";
    const label = face.name + best;
    const height = 6 * line + 10;
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillRect(x1, Math.max(0, y1 - height), ctx.measureText(label).width + 8, height);
    ctx.fillStyle = "#000";
    ctx.fillText(label, x1 + 4, Math.max(height - 4, y1 - 4));
  }
}

$("identify-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = $("identify-result");
  const blob = $("identify-file").files[0] || cameraBlob;
  if (!blob) return showError(out, new Error("choose a photo or take one with the camera"));
  const form = new FormData();
  form.append("image", blob, blob.name || "camera.jpg");
  out.textContent = "identifying…";
  out.className = "result";
  try {
    const data = await call("POST", "/identify", form);
    await drawIdentified(blob, data.faces);
    out.innerHTML = "";
    if (!data.faces.length) out.textContent = "no face found";
    data.faces.forEach((face, i) => {
      const item = document.createElement("li");
      const ranked = face.matches.map((m) => `${m.person} ${m.similarity.toFixed(3)}`).join(", ");
      item.textContent = `face ${i}: ${face.name}  [${ranked}]`;
      item.dataset.name = face.name;
      out.appendChild(item);
    });
  } catch (error) {
    showError(out, error);
  }
});

$("camera-start").addEventListener("click", async () => {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    $("camera").srcObject = stream;
    $("camera").hidden = false;
    $("camera-shoot").hidden = false;
  } catch (error) {
    showError($("identify-result"), new Error("camera unavailable: " + error.message));
  }
});

$("camera-shoot").addEventListener("click", () => {
  const video = $("camera");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => {
    cameraBlob = blob;
    $("identify-file").value = "";
    $("identify-form").requestSubmit();
  }, "image/jpeg", 0.92);
});

// -- enroll ---------------------------------------------------------------------------------------
$("enroll-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = $("enroll-result");
  const form = new FormData();
  form.append("name", $("enroll-name").value);
  for (const file of $("enroll-files").files) form.append("images", file, file.name);
  form.append("largest", $("enroll-largest").checked ? "true" : "false");
  out.textContent = "enrolling…";
  out.className = "result";
  try {
    const data = await call("POST", "/people", form);
    const already = data.already ? `; ${data.already} photo(s) already enrolled for ${data.name}, not stored twice` : "";
    out.textContent = `enrolled ${data.name}: ${data.faces} face(s)${already}${skippedText(data.skipped)}`;
    refreshPeople();
  } catch (error) {
    showError(out, error);
  }
});

// -- verify ---------------------------------------------------------------------------------------
$("verify-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = $("verify-result");
  const form = new FormData();
  form.append("image_a", $("verify-a").files[0]);
  form.append("image_b", $("verify-b").files[0]);
  out.textContent = "comparing…";
  out.className = "result";
  try {
    const r = await call("POST", "/verify", form);
    const verdict = r.same ? "same person" : "different people";
    out.innerHTML = "";
    const strong = document.createElement("span");
    strong.className = r.same ? "same" : "different";
    strong.textContent = verdict;
    out.append(strong, ` — similarity ${r.similarity.toFixed(3)} vs threshold ${r.threshold.toFixed(3)} (${r.point})`);
  } catch (error) {
    showError(out, error);
  }
});

// -- authenticate: a few seconds of webcam frames -> liveness (+ head turn) and 1:1 ----------------
const CLIP = { frames: 16, intervalMs: 200 }; // about 3 s, a frame every 200 ms
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function openCamera() {
  const video = $("auth-camera");
  if (!video.srcObject) {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
    video.hidden = false;
  }
  while (!video.videoWidth) await sleep(50); // the first frame gives the size
  return video;
}

// A challenge's turns (the person's own left and right): a look at the camera first, then each turn and back.
const LEAD = 2; // frames of the face at rest, the reference the turns are measured from
const PER_TURN = 9; // about 1.8 s to turn and look back

function clipPrompts(turns) {
  if (turns === null) return Array.from({ length: CLIP.frames }, (_, i) => `Look at the camera… (${CLIP.frames - i})`);
  const steps = turns.length ? turns : ["one side"];
  const prompts = Array(LEAD).fill("Look at the camera…");
  for (const turn of steps) {
    const where = turn === "one side" ? "to one side" : `to your ${turn}`;
    for (let i = 0; i < PER_TURN; i++) prompts.push(`Turn your head slowly ${where}, and back… (${PER_TURN - i})`);
  }
  return prompts;
}

async function recordClip(turns) {
  const video = await openCamera();
  const prompt = $("auth-prompt");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext("2d");
  const blobs = [];
  for (const text of clipPrompts(turns)) {
    prompt.textContent = text;
    ctx.drawImage(video, 0, 0); // as the camera sees it: the preview alone is mirrored
    blobs.push(await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92)));
    await sleep(CLIP.intervalMs);
  }
  prompt.textContent = "";
  return blobs;
}

function describeTurn(c) {
  if (!c) return "";
  const seen = c.seen.length ? c.seen.join(", then ") : "none";
  const directed = c.asked !== null && c.asked.length > 0;
  const verdict = c.passed ? (directed ? "head turns as asked" : "head turn seen") : c.seen.length ? "head turns not as asked" : "head turn not seen";
  const detail = directed ? `asked ${c.asked.join(", then ")}; seen ${seen}` : `seen ${seen}`;
  return `; ${verdict} (${detail}; peak parallax ${c.peak_parallax.toFixed(3)})`;
}

function describeLiveness(l) {
  return `liveness: ${l.live ? "live" : "not live"}: ${l.reason}\nlive score ${l.live_score.toFixed(3)} vs ${l.threshold.toFixed(3)}, ${l.frames_with_face} frames with a face${describeTurn(l.challenge)}`;
}

async function runClip(path, withName) {
  const out = $("auth-result");
  const name = $("auth-name").value.trim();
  if (withName && !name) return showError(out, new Error("enter the enrolled name to authenticate as"));
  out.className = "result";
  out.textContent = "";
  delete out.dataset.decision;
  try {
    const form = new FormData();
    if (withName) form.append("name", name);
    let turns = null;
    if (withName || $("auth-challenge").checked) { // authentication always asks for the turns
      const issued = await call("POST", "/challenge"); // before filming: the turns are the server's to choose
      form.append("challenge_token", issued.token);
      turns = issued.turns;
    }
    (await recordClip(turns)).forEach((blob, i) => form.append("frames", blob, `frame${i}.jpg`));
    out.textContent = "checking…";
    const r = await call("POST", path, form);
    if (withName) {
      out.dataset.decision = r.decision;
      out.innerHTML = "";
      const strong = document.createElement("span");
      strong.className = r.accepted ? "same" : "different";
      strong.textContent = `${r.decision}: ${r.name}`;
      out.append(strong, `\n${describeLiveness(r.liveness)}\nidentity: similarity ${r.similarity.toFixed(3)} vs ${r.threshold.toFixed(3)} (${r.point})`);
    } else {
      out.dataset.decision = r.live ? "live" : "not live";
      out.textContent = describeLiveness(r);
    }
  } catch (error) {
    showError(out, error);
  }
}

$("auth-form").addEventListener("submit", (event) => {
  event.preventDefault();
  runClip("/authenticate", true);
});
$("live-go").addEventListener("click", () => runClip("/liveness", false));

// -- cluster: photos -> groups of faces as contact sheets; kept groups can be named, merged or split -----
const BATCH = 8; // the service's RNNFACE_MAX_IMAGES by default: a run takes the selection batch by batch

async function thumbnail(file, box, size = 72) {
  const bitmap = await createImageBitmap(file);
  const [x1, y1, x2, y2] = box;
  const side = Math.max(x2 - x1, y2 - y1) * 1.5;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  canvas.getContext("2d").drawImage(bitmap, (x1 + x2 - side) / 2, (y1 + y2 - side) / 2, side, side, 0, 0, size, size);
  return canvas;
}

async function showGroups(title, groups, files, kept) {
  const holder = $("cluster-groups");
  holder.innerHTML = "";
  for (const group of groups) {
    const card = document.createElement("div");
    card.className = "sheet";
    card.dataset.group = group.name;
    card.dataset.size = group.faces.length;
    const head = document.createElement("p");
    head.textContent = `${group.name}: ${group.faces.length} face(s)${group.note ? " " + group.note : ""}`;
    card.appendChild(head);
    for (const face of group.faces) {
      const file = files.find((f) => f.name === face.image);
      if (!file) continue;
      const figure = document.createElement("figure");
      figure.className = "member";
      figure.appendChild(await thumbnail(file, face.box));
      if (kept && face.face_id != null) {
        figure.dataset.faceId = face.face_id;
        const split = document.createElement("button");
        split.type = "button";
        split.className = "split";
        split.textContent = "Split off";
        split.title = "Not this person: move this face to a group of its own";
        split.addEventListener("click", async () => {
          try {
            const done = await call("POST", `/faces/${face.face_id}/split`);
            const caption = document.createElement("figcaption");
            caption.textContent = `now ${done.group}`;
            split.replaceWith(caption);
            figure.classList.add("split-off");
            const left = card.querySelectorAll("figure.member:not(.split-off)").length;
            head.textContent = head.textContent.replace(/\d+ face\(s\)/, `${left} face(s)`);
            refreshPeople();
          } catch (error) {
            alert(error.message);
          }
        });
        figure.appendChild(split);
      }
      card.appendChild(figure);
    }
    if (kept && group.name.startsWith("unknown #")) {
      const number = group.name.slice("unknown #".length);
      const control = (placeholder, label, done) => {
        const input = document.createElement("input");
        input.placeholder = placeholder;
        input.maxLength = 256;
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = label;
        button.addEventListener("click", async () => {
          try {
            done(await call("POST", `/clusters/${number}/name`, form({ name: input.value })));
            refreshPeople();
          } catch (error) {
            alert(error.message);
          }
        });
        return [input, button];
      };
      const [name, go] = control("Name this person", "Name", (done) => {
        head.textContent = `${done.name}: ${done.faces} face(s) (named)`;
      });
      const [into, merge] = control("merge into group k", "Merge", (done) => {
        head.textContent = `${group.name}: ${done.faces} face(s) moved into ${done.name}`;
      });
      const actions = document.createElement("div");
      actions.className = "sheet-actions";
      actions.append(name, go, into, merge);
      card.appendChild(actions);
    }
    holder.appendChild(card);
  }
  $("cluster-result").textContent = title;
}

function skippedText(skipped) {
  return skipped.map((s) => `\nskipped ${s.image}: ${s.reason}`).join("");
}

function form(fields) {
  const data = new FormData();
  for (const [k, v] of Object.entries(fields)) data.append(k, v);
  return data;
}

$("cluster-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = $("cluster-result");
  const files = Array.from($("cluster-files").files);
  const keep = $("cluster-keep").checked;
  out.className = "result";
  let run = null;
  try {
    // one run for the whole selection: its photos go up in batches, and are grouped (or kept) as one set
    run = (await call("POST", "/cluster/runs")).run;
    for (let start = 0; start < files.length; start += BATCH) {
      out.textContent = `finding faces in photos ${start + 1}-${Math.min(files.length, start + BATCH)} of ` +
        `${files.length}…`;
      const data = form({});
      files.slice(start, start + BATCH).forEach((f) => data.append("images", f, f.name));
      await call("POST", `/cluster/runs/${run}/photos`, data);
    }
    out.textContent = keep ? "adding the faces to the gallery's groups…" : "grouping…";
    const result = await call("POST", `/cluster/runs/${run}/${keep ? "keep" : "groups"}`, form({}));
    run = null; // grouping or keeping ended it
    if (!keep) {
      const groups = result.groups.map((g) => ({ name: `group ${g.number}`, faces: g.members,
        note: `(cohesion ${g.cohesion.toFixed(2)})` }));
      if (result.alone.length) groups.push({ name: "left alone", faces: result.alone });
      return showGroups(`${result.faces} face(s), ${result.groups.length} group(s); threshold ` +
        `${result.threshold.toFixed(3)} (${result.point})${skippedText(result.skipped)}`, groups, files, false);
    }
    const byGroup = new Map();
    for (const face of result.faces) {
      const name = face.group || "left alone";
      if (!byGroup.has(name)) byGroup.set(name, []);
      byGroup.get(name).push(face);
    }
    const groups = [...byGroup].map(([name, faces]) => ({ name, faces,
      note: faces[0].stored || name === "left alone" ? "" : "(looks like this person; not stored)" }));
    await showGroups(`${files.length} photo(s) sent to the gallery's groups${skippedText(result.skipped)}`, groups,
      files, true);
    refreshPeople();
  } catch (error) {
    if (run) call("DELETE", `/cluster/runs/${run}`).catch(() => {});
    showError(out, error);
  }
});

// -- people ---------------------------------------------------------------------------------------
async function refreshPeople() {
  const body = $("people-list");
  try {
    const data = await call("GET", "/people");
    body.innerHTML = "";
    for (const person of data.people) {
      const row = document.createElement("tr");
      row.dataset.name = person.name;
      const name = document.createElement("td");
      name.textContent = person.name;
      const faces = document.createElement("td");
      faces.textContent = person.faces;
      const action = document.createElement("td");
      const button = document.createElement("button");
      button.textContent = "Delete";
      button.addEventListener("click", async () => {
        if (!confirm(`Delete ${person.name} and all their face data?`)) return;
        try {
          await call("DELETE", "/people/" + encodeURIComponent(person.name));
          refreshPeople();
        } catch (error) {
          alert(error.message);
        }
      });
      action.appendChild(button);
      row.append(name, faces, action);
      body.appendChild(row);
    }
  } catch (error) {
    body.innerHTML = `<tr><td colspan="3" class="error"></td></tr>`;
    body.querySelector("td").textContent = "error: " + error.message;
  }
}

$("people-refresh").addEventListener("click", refreshPeople);
// The key lives for this tab only (sessionStorage: gone when the tab closes, never written to disk for good);
// "forget" clears it at once. An older page kept it in localStorage: that copy is removed.
localStorage.removeItem("rnnface-api-key");
$("api-key").value = sessionStorage.getItem("rnnface-api-key") || "";
$("api-key").addEventListener("change", () => sessionStorage.setItem("rnnface-api-key", $("api-key").value));
$("forget-key").addEventListener("click", () => {
  sessionStorage.removeItem("rnnface-api-key");
  $("api-key").value = "";
});

call("GET", "/health")
  .then((h) => { $("status").textContent = `service ok (v${h.version})`; })
  .catch((e) => { $("status").textContent = "service unreachable: " + e.message; });
refreshPeople();
