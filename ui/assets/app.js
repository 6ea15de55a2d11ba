// Baro Mesh app: plain JavaScript, no build step, no inline script (the
// Content-Security-Policy forbids it). Every text from the network is put
// on the page with textContent, never as HTML.
"use strict";

const PAGE = 50;          // messages shown when a room opens
const MORE = 200;         // more messages per "older" click
const STATUS_EVERY = 5000; // ms between status checks

const state = {
  lang: pickLanguage(),
  status: null,
  nodeUp: true,
  rooms: [],
  current: null,   // the open room's id
  limit: PAGE,
  messages: [],
  dialog: null,    // what the dialog shows: a function redrawing it
  reload: null,    // reads again what the dialog shows (devices, revocations)
  console: null,   // this device's operator console (agency, operator), if it is one
};

const $ = (id) => document.getElementById(id);

function pickLanguage() {
  const saved = localStorage.getItem("baro.lang");
  if (saved === "ko" || saved === "en") return saved;
  const langs = navigator.languages || [navigator.language || "en"];
  return langs.some((l) => String(l).toLowerCase().startsWith("ko")) ? "ko" : "en";
}

function t(key) {
  return (TEXTS[state.lang] && TEXTS[state.lang][key]) || TEXTS.en[key] || key;
}

// An element with text (never HTML), attributes and children.
function el(tag, options, ...children) {
  const node = document.createElement(tag);
  const o = options || {};
  if (o.className) node.className = o.className;
  if (o.text !== undefined && o.text !== null) node.textContent = String(o.text);
  for (const [name, value] of Object.entries(o.attrs || {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value));
  }
  if (o.onclick) node.addEventListener("click", o.onclick);
  for (const child of children) if (child) node.appendChild(child);
  return node;
}

// ---------------------------------------------------------------- the node

class NodeError extends Error {}

async function post(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (e) {
    nodeDown();
    throw new NodeError(t("node_down"));
  }
  return answer(response);
}

async function answer(response) {
  if (response.status === 401) {
    location.reload();
    throw new NodeError("session ended");
  }
  const value = await response.json();
  if (value.response === "error") throw new NodeError(value.body);
  return value.body;
}

// One control API request (node/src/api/protocol.rs).
function call(request) {
  return post("/api", request);
}

async function getRooms() {
  let response;
  try {
    response = await fetch("/api/rooms", { credentials: "same-origin" });
  } catch (e) {
    nodeDown();
    throw new NodeError(t("node_down"));
  }
  return answer(response);
}

// ---------------------------------------------------------------- language

function applyLanguage() {
  document.documentElement.lang = state.lang;
  $("language").value = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nLabel));
    node.title = t(node.dataset.i18nLabel);
  }
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  renderStatus();
  renderRooms();
  renderMessages(false);
  if (state.dialog) state.dialog();
}

// ---------------------------------------------------------------- times

function timeText(ms) {
  const date = new Date(Number(ms));
  const now = new Date();
  const sameDay = date.toDateString() === now.toDateString();
  const options = sameDay
    ? { hour: "2-digit", minute: "2-digit" }
    : { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" };
  return new Intl.DateTimeFormat(state.lang, options).format(date);
}

const secondsText = (secs) => (secs ? timeText(secs * 1000) : t("never"));

// ---------------------------------------------------------------- status

function nodeDown() {
  if (!state.nodeUp) return;
  state.nodeUp = false;
  renderStatus();
}

async function refreshStatus() {
  try {
    state.status = await call({ request: "status" });
    if (!state.nodeUp) {
      state.nodeUp = true;
      refreshAll();
    }
  } catch (e) {
    if (!(e instanceof NodeError)) nodeDown();
  }
  renderStatus();
}

function renderStatus() {
  const box = $("offline");
  const s = state.status;
  let mode = "online";
  let text;
  if (!state.nodeUp) {
    mode = "node-down";
    text = t("node_down");
  } else if (!s) {
    mode = "unknown";
    text = "…";
  } else {
    const sync = `${t("last_sync")} ${secondsText(s.last_sync)}`;
    if (s.peers === 0) {
      mode = "offline";
      text = `${t("no_peers")} · ${sync}`;
    } else {
      text = `${t("online")} · ${s.peers} ${t("peers")}`;
      if (s.bootstrap.length > 0 && s.relays.length === 0) text += ` · ${t("relay_unreachable")}`;
      text += ` · ${sync}`;
    }
    $("me").textContent = `Baro Mesh · ${s.user_id}`;
  }
  box.dataset.state = mode;
  box.textContent = text;
}

// ---------------------------------------------------------------- rooms

async function refreshRooms() {
  try {
    state.rooms = await getRooms();
  } catch (e) {
    return;
  }
  renderRooms();
  renderRoomHeader();
}

function renderRooms() {
  const list = $("rooms");
  list.replaceChildren();
  $("no-rooms").hidden = state.rooms.length > 0;
  for (const room of state.rooms) {
    const last = room.last;
    const button = el("button", {
      className: "room",
      attrs: {
        type: "button",
        "data-testid": "room-item",
        "data-room-name": room.name,
        "data-room-id": room.id,
        "aria-current": room.id === state.current ? "true" : null,
      },
      onclick: () => openRoom(room.id),
    },
    el("span", { className: "room-name", text: room.name }),
    el("span", { className: "room-time", text: last ? timeText(last.wall_ms) : "" }),
    el("span", { className: "room-last", text: last ? `${last.sender_name}: ${last.text}` : t(room.kind) }),
    room.unread > 0
      ? el("span", {
          className: "badge",
          text: room.unread,
          attrs: { "data-testid": "unread-badge", "aria-label": `${room.unread} unread` },
        })
      : null);
    list.appendChild(el("li", {}, button));
  }
}

function currentRoom() {
  return state.rooms.find((r) => r.id === state.current);
}

function renderRoomHeader() {
  const room = currentRoom();
  $("room-title").textContent = room ? room.name : "";
  $("room-members").textContent = room
    ? `${t(room.kind)} · ${room.kind === "department" ? room.members.join(", ") : room.members.length}`
    : "";
  $("room-info").hidden = !room;
}

async function openRoom(id) {
  state.current = id;
  state.limit = PAGE;
  state.messages = [];
  document.body.classList.add("in-room");
  $("composer-form").hidden = false;
  $("pick-room").hidden = true;
  renderRooms();
  renderRoomHeader();
  renderMessages(true);
  await loadMessages("bottom");
  $("composer").focus();
  markRead();
}

function closeRoom() {
  document.body.classList.remove("in-room");
}

// `arrived`: a message just came into the open room (the list's unread
// count may not show it yet).
async function markRead(arrived) {
  const room = currentRoom();
  if (!room || document.hidden || (room.unread === 0 && !arrived)) return;
  try {
    await call({ request: "mark_read", room: room.id });
  } catch (e) {
    return;
  }
  refreshRooms();
}

// ---------------------------------------------------------------- messages

// Reads the open room's newest `state.limit` messages; `keep`: "bottom"
// scrolls to the newest, "top" keeps what is in view after older ones load.
async function loadMessages(keep) {
  const id = state.current;
  if (!id) return;
  const box = $("messages-box");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const fromBottom = box.scrollHeight - box.scrollTop;
  const started = performance.now();
  let messages;
  try {
    messages = await call({ request: "history", room: id, limit: state.limit });
  } catch (e) {
    return;
  }
  if (id !== state.current) return;
  state.messages = messages;
  renderMessages(false);
  $("messages").dataset.loadMs = String(Math.round(performance.now() - started));
  if (keep === "top") box.scrollTop = box.scrollHeight - fromBottom;
  else if (keep === "bottom" || atBottom) box.scrollTop = box.scrollHeight;
}

function progressText(m) {
  const progress = m.progress || (m.queued ? "waiting" : "sent");
  const names = (state) =>
    m.receipts.filter((r) => r.state === state).map((r) => r.name || r.user);
  // Who read it, who has it; else how far it got (waiting, sent, stored).
  const parts = [];
  for (const s of ["read", "delivered"]) {
    const who = names(s);
    if (who.length > 0) parts.push(`${t(s)}: ${who.join(", ")}`);
  }
  if (parts.length === 0) parts.push(t(progress));
  return { progress, text: parts.join(" · ") };
}

function renderMessage(m) {
  const item = el("li", {
    className: m.from_me ? "message mine" : "message",
    attrs: { "data-testid": "message", "data-id": m.id, "data-from-me": m.from_me },
  },
  el("div", { className: "message-head" },
    el("span", { className: "sender", text: m.from_me ? `${m.sender_name} (${t("you")})` : m.sender_name }),
    el("time", { className: "muted", text: timeText(m.wall_ms), attrs: { datetime: new Date(m.wall_ms).toISOString() } })),
  el("div", { className: "text", text: m.text }));
  if (m.attachment) item.appendChild(renderAttachment(m.attachment, m.room));
  if (m.from_me) {
    const { progress, text } = progressText(m);
    item.appendChild(el("div", { className: "state", text, attrs: { "data-progress": progress } }));
  }
  return item;
}

function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

// Image types a preview may have (shown as an <img> from a data: URL).
const PREVIEW_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];

// Files fetched (or being fetched) on this page: file id -> object URL or "fetching".
const fetchedFiles = new Map();

function fileUrl(room, a) {
  return `/api/file?room=${encodeURIComponent(room)}&file=${encodeURIComponent(a.file_id)}`;
}

// Fetches a file from the mesh (progress in `progress`), then shows an
// image inline or saves anything else.
async function download(a, room, progress) {
  if (fetchedFiles.get(a.file_id) === "fetching") return;
  fetchedFiles.set(a.file_id, "fetching");
  const started = Date.now();
  try {
    for (;;) {
      const view = await call({ request: "fetch_file", room, file: a.file_id });
      const held = view.attachment ? view.attachment.held : 0;
      progress.textContent = `${t("chunks_held")} ${held}/${a.chunks}`;
      if (held >= a.chunks) break;
      if (Date.now() - started > 120000) throw new Error(`${held}/${a.chunks}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    const response = await fetch(fileUrl(room, a), { credentials: "same-origin" });
    if (!response.ok) throw new Error(await response.text());
    const url = URL.createObjectURL(await response.blob());
    fetchedFiles.set(a.file_id, url);
    if (PREVIEW_TYPES.includes(a.media_type)) renderMessages(false);
    else {
      const link = el("a", { attrs: { href: url, download: a.name } });
      document.body.appendChild(link);
      link.click();
      link.remove();
    }
  } catch (e) {
    fetchedFiles.delete(a.file_id);
    progress.textContent = e.message;
  }
}

function renderAttachment(a, room) {
  const progress = el("span", { className: "muted", text: `${t("chunks_held")} ${a.held}/${a.chunks}` });
  const box = el("div", { className: "attachment", attrs: { "data-testid": "attachment", "data-file-id": a.file_id } },
    el("span", { className: "name", text: a.name }),
    el("span", { className: "muted", text: `${a.media_type} · ${sizeText(a.size)}` }),
    progress);
  const got = fetchedFiles.get(a.file_id);
  if (got && got !== "fetching") {
    if (PREVIEW_TYPES.includes(a.media_type)) {
      box.insertBefore(el("img", { attrs: { src: got, alt: a.name, "data-testid": "image" } }), box.firstChild);
    }
  } else {
    box.appendChild(el("button", {
      text: t(PREVIEW_TYPES.includes(a.media_type) ? "show" : "download"),
      attrs: { type: "button", "data-testid": "download" },
      onclick: () => download(a, room, progress),
    }));
  }
  // The preview stands in for the photo until the photo itself is here.
  const p = got && got !== "fetching" ? null : a.preview;
  if (p && PREVIEW_TYPES.includes(p.media_type) && /^[0-9a-f]*$/.test(p.hex)) {
    const bytes = p.hex.match(/../g) || [];
    const b64 = btoa(bytes.map((h) => String.fromCharCode(parseInt(h, 16))).join(""));
    box.insertBefore(el("img", { attrs: { src: `data:${p.media_type};base64,${b64}`, alt: a.name, "data-testid": "preview" } }), box.firstChild);
  }
  return box;
}

// Sends files to the open room, one after another, with progress.
async function attach(files) {
  const room = state.current;
  const status = $("upload-status");
  for (const file of files) {
    if (!room) return;
    status.hidden = false;
    try {
      await new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open("POST", `/api/upload?room=${encodeURIComponent(room)}&name=${encodeURIComponent(file.name)}`);
        xhr.upload.onprogress = (e) => {
          const pct = e.lengthComputable ? Math.round((100 * e.loaded) / e.total) : 0;
          status.textContent = `${t("uploading")} ${file.name}: ${pct}%`;
        };
        xhr.onload = () => {
          let value = null;
          try { value = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
          if (xhr.status === 200 && value && value.response !== "error") resolve();
          else reject(new Error((value && value.body) || `HTTP ${xhr.status}`));
        };
        xhr.onerror = () => reject(new Error(t("node_down")));
        xhr.send(file);
      });
      status.textContent = `${t("uploaded")}: ${file.name}`;
    } catch (e) {
      $("send-error").textContent = `${file.name}: ${e.message}`;
      $("send-error").hidden = false;
    }
  }
  await loadMessages("bottom");
  refreshRooms();
}

function renderMessages(empty) {
  const list = $("messages");
  list.replaceChildren(...(empty ? [] : state.messages.map(renderMessage)));
  $("older").hidden = !state.current || state.messages.length < state.limit;
  const room = currentRoom();
  $("send-error").hidden = !room || room.can_send;
  if (room && !room.can_send) $("send-error").textContent = t("cannot_send");
}

async function send() {
  const composer = $("composer");
  const text = composer.value;
  if (!state.current || text.trim() === "") return;
  $("send").disabled = true;
  try {
    await call({ request: "send", room: state.current, text });
    composer.value = "";
    $("send-error").hidden = true;
  } catch (e) {
    $("send-error").textContent = e.message;
    $("send-error").hidden = false;
  } finally {
    $("send").disabled = false;
    composer.focus();
  }
  await loadMessages("bottom");
  refreshRooms();
}

// ---------------------------------------------------------------- live

let pending = null;
// Coalesces bursts of events into one reload of what they touch.
function soon(what) {
  pending = pending || new Set();
  pending.add(what);
  setTimeout(() => {
    const todo = pending;
    pending = null;
    if (!todo) return;
    if (todo.has("messages")) loadMessages();
    if (todo.has("rooms")) refreshRooms();
    if (todo.has("status")) refreshStatus();
    if (todo.has("dialog") && state.reload) state.reload();
  }, 150);
}

function notify(message) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  const n = new Notification(`${message.sender_name} · ${message.room_name}`, { body: message.text, tag: message.room });
  n.onclick = () => { window.focus(); openRoom(message.room); };
}

function listen() {
  const events = new EventSource("/events");
  events.onmessage = (e) => {
    let event;
    try { event = JSON.parse(e.data); } catch (err) { return; }
    switch (event.kind) {
      case "hello":
        if (!state.nodeUp) { state.nodeUp = true; refreshAll(); }
        break;
      case "message":
        if (event.message.room === state.current) {
          // Shown at once, then read again with its states.
          if (!state.messages.some((m) => m.id === event.message.id)) {
            state.messages.push(event.message);
            const box = $("messages-box");
            const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
            $("messages").appendChild(renderMessage(event.message));
            if (atBottom) box.scrollTop = box.scrollHeight;
          }
          markRead(true);
        }
        if (!event.message.from_me) notify(event.message);
        soon("rooms");
        break;
      case "gossip": case "synced":
        if (state.current) soon("messages");
        soon("status");
        break;
      case "peers": soon("status"); break;
      case "room": soon("rooms"); break;
      case "revoked": case "wipe_confirmed": soon("dialog"); break;
      case "wiped":
        $("offline").dataset.state = "node-down";
        $("offline").textContent = `${t("wiped")}: ${event.notice}`;
        break;
      case "reload": refreshAll(); break;
    }
  };
  // The browser reconnects by itself (the server asks for 1 s).
  events.onerror = () => nodeDown();
}

function refreshAll() {
  refreshStatus();
  checkConsole();
  refreshRooms();
  loadMessages();
  if (state.reload) state.reload();
  else if (state.dialog) state.dialog();
}

// ---------------------------------------------------------------- dialogs

function showDialog(title, draw, reload) {
  const dialog = $("dialog");
  state.reload = reload || null;
  state.dialog = () => {
    $("dialog-title").textContent = t(title);
    draw($("dialog-body"));
  };
  state.dialog();
  if (!dialog.open) dialog.showModal();
}

function errorLine(message) {
  return el("p", { className: "error", text: message, attrs: { role: "alert" } });
}

function form(fields, label, onsubmit) {
  const f = el("form", {}, ...fields, el("button", { className: "primary", text: t(label), attrs: { type: "submit" } }));
  f.addEventListener("submit", (e) => { e.preventDefault(); onsubmit(); });
  return f;
}

function input(labelKey, id, type) {
  return el("input", { attrs: { id, type: type || "text", "aria-label": t(labelKey), placeholder: t(labelKey), autocomplete: "off" } });
}

function newChat() {
  let found = null;
  let error = null;
  let query = "";
  showDialog("new_chat", (body) => {
    const field = input("search_people", "people-input", "search");
    field.value = query;
    const run = async () => {
      query = field.value.trim();
      try {
        found = await call(query ? { request: "people", search: query } : { request: "people" });
        error = null;
      } catch (e) { error = e.message; }
      state.dialog();
    };
    const list = el("ul", { className: "list" });
    for (const p of (found && found.people) || []) {
      list.appendChild(el("li", { attrs: { "data-testid": "person" } },
        el("span", { className: "grow" },
          el("strong", { text: p.name }),
          el("span", { className: "muted", text: ` ${p.user} · ${p.org_unit}` })),
        el("button", { className: "primary", text: t("open_chat"), attrs: { type: "button" }, onclick: async () => {
          try {
            const room = await call({ request: "find_room", room: `@${p.user}` });
            $("dialog").close();
            await refreshRooms();
            openRoom(room.id);
          } catch (e) { error = e.message; state.dialog(); }
        } })));
    }
    body.replaceChildren(
      form([field], "search", run),
      found && found.local_only ? el("p", { className: "muted", text: t("local_only") }) : null,
      found && found.people.length === 0 ? el("p", { className: "empty", text: t("no_people") }) : null,
      error ? errorLine(error) : null,
      list);
    field.focus();
    if (!found && !error) run();
  });
}

function newGroup() {
  let error = null;
  showDialog("new_group", (body) => {
    const name = input("group_name", "group-name");
    const members = input("group_members", "group-members");
    body.replaceChildren(form([name, members], "create", async () => {
      const users = members.value.split(/[,\s]+/).map((s) => s.trim()).filter(Boolean);
      try {
        const room = await call({ request: "create_room", name: name.value.trim(), members: users });
        $("dialog").close();
        await refreshRooms();
        openRoom(room.id);
      } catch (e) { error = e.message; body.appendChild(errorLine(error)); }
    }));
    name.focus();
  });
}

function roomInfo() {
  let error = null;
  showDialog("members", (body) => {
    const room = currentRoom();
    if (!room) { body.replaceChildren(); return; }
    const me = state.status ? state.status.user_id : "";
    const isAdmin = room.admins.includes(me);
    const act = async (request) => {
      try { await call(request); error = null; } catch (e) { error = e.message; }
      await refreshRooms();
      state.dialog();
    };
    const list = el("ul", { className: "list" });
    for (const user of room.members) {
      list.appendChild(el("li", {},
        el("span", { className: "grow", text: user === me ? `${user} (${t("you")})` : user }),
        room.admins.includes(user) ? el("span", { className: "muted", text: t("admin") }) : null,
        room.kind === "group" && isAdmin && user !== me
          ? el("button", { className: "danger", text: t("remove"), attrs: { type: "button" },
              onclick: () => act({ request: "remove", room: room.id, user }) })
          : null));
    }
    const parts = [el("p", { className: "muted", text: `${room.name} · ${t(room.kind)}` }), list];
    if (room.kind === "group") {
      const who = input("invite_user", "invite-user");
      if (isAdmin) parts.push(form([who], "invite", () => act({ request: "invite", room: room.id, user: who.value.trim() })));
      parts.push(el("button", { className: "danger", text: t("leave"), attrs: { type: "button" }, onclick: async () => {
        await act({ request: "leave", room: room.id });
        if (!error) { $("dialog").close(); state.current = null; closeRoom(); refreshRooms(); renderMessages(true); }
      } }));
    }
    if (error) parts.push(errorLine(error));
    body.replaceChildren(...parts);
  });
}

function devices() {
  let error = null;
  let armed = null; // the device whose revoke button was pressed once
  let list = null;
  let revocations = [];
  const load = async () => {
    try {
      [list, revocations] = await Promise.all([call({ request: "devices" }), call({ request: "revocations" })]);
    } catch (e) { error = e.message; }
    state.dialog();
  };
  showDialog("my_devices", (body) => {
    if (!list) { body.replaceChildren(el("p", { className: "muted", text: "…" })); load(); return; }
    const ul = el("ul", { className: "list" });
    for (const d of list) {
      const rev = revocations.find((r) => r.device === d.device);
      const facts = [d.name];
      if (d.this_device) facts.push(t("this_device"));
      if (d.connected) facts.push(t("connected"));
      facts.push(`${t("last_seen")} ${secondsText(d.last_seen)}`);
      const lines = [el("strong", { text: d.label || d.device.slice(0, 12) }), el("div", { className: "muted", text: facts.join(" · ") })];
      if (d.revoked) {
        lines.push(el("div", { className: "muted", text: `${t("revoked")}: ${d.revoked} ${secondsText(d.revoked_at)}` }));
        const wiped = rev && rev.wiped.length > 0;
        lines.push(el("div", {
          className: wiped ? "state" : "muted",
          text: wiped ? `${t("wipe_receipt")}: ${secondsText(rev.wiped[0].wiped_at)}` : t("no_receipt"),
          attrs: { "data-testid": "wipe-state", "data-wiped": wiped },
        }));
      }
      const revoke = !d.this_device && !d.revoked
        ? el("button", {
            className: armed === d.device ? "danger armed" : "danger",
            text: armed === d.device ? t("confirm_revoke") : t("revoke_wipe"),
            attrs: { type: "button", "data-testid": "revoke-device" },
            onclick: async () => {
              if (armed !== d.device) { armed = d.device; state.dialog(); return; }
              armed = null;
              try { await call({ request: "revoke_own_device", device: d.device, reason: t("lost_reason") }); error = null; }
              catch (e) { error = e.message; }
              load();
            },
          })
        : null;
      ul.appendChild(el("li", { attrs: { "data-testid": "device", "data-device": d.device } }, el("div", { className: "grow" }, ...lines), revoke));
    }
    body.replaceChildren(ul, error ? errorLine(error) : null);
  }, load);
}

// Revocations with their coverage: who was shown each (relays and
// devices), when the device was last seen, and its wipe receipt.
function revocationItems(list) {
  const ul = el("ul", { className: "list", attrs: { "data-testid": "revocation-list" } });
  for (const r of list) {
    const holders = r.held_by.map((h) => (h.name ? `${h.name}${h.role === "relay" ? ` (${t("relay")})` : ""}` : h.device)).join(", ") || t("none");
    const wiped = r.wiped.length > 0;
    const wipeText = wiped ? `${t("wipe_receipt")}: ${secondsText(r.wiped[0].wiped_at)}` : (r.wipe ? t("no_receipt") : t("no_wipe"));
    const what = r.scope === "user"
      ? `${r.display_name} (${r.user}) · ${t("every_device")}`
      : `${r.display_name} (${r.user})${r.label ? " · " + r.label : ""} · ${r.device.slice(-8)}`;
    ul.appendChild(el("li", { attrs: { "data-testid": "revocation", "data-device": r.device, "data-user": r.user, "data-scope": r.scope, "data-wiped": wiped, "data-held": r.held_by.length } },
      el("div", { className: "grow" },
        el("strong", { text: what }),
        el("div", { className: "muted", text: `${t(r.scope === "user" ? "scope_user" : "scope_device")} · ${r.reason} · ${r.issued_by} · ${secondsText(r.issued_at)}` }),
        el("div", { className: "muted", text: `${t("seen_by")} (${r.held_by.length}): ${holders}`, attrs: { "data-testid": "revocation-coverage" } }),
        el("div", { className: "muted", text: `${t("device_last_seen")}: ${secondsText(r.device_last_seen)} · ${r.published ? t("published") : t("not_published")}` }),
        el("div", { className: wiped ? "state" : "muted", text: wipeText, attrs: { "data-testid": "revocation-wipe" } }))));
  }
  if (list.length === 0) ul.appendChild(el("li", { className: "empty", text: t("none") }));
  return ul;
}

function revocationList() {
  let list = null;
  let error = null;
  const load = async () => {
    try { list = await call({ request: "revocations" }); } catch (e) { error = e.message; list = []; }
    state.dialog();
  };
  showDialog("revocations", (body) => {
    if (!list) { body.replaceChildren(el("p", { className: "muted", text: "…" })); load(); return; }
    body.replaceChildren(revocationItems(list), error ? errorLine(error) : null);
  }, load);
}

// ---------------------------------------------------------------- operator

// An input whose label follows the language (applyLanguage relabels it).
function field(labelKey, testid, type, extra) {
  const node = el("input", { attrs: Object.assign({ type: type || "text", "data-testid": testid, "data-i18n-label": labelKey, "data-i18n-placeholder": labelKey, autocomplete: "off" }, extra || {}) });
  node.setAttribute("aria-label", t(labelKey));
  node.placeholder = t(labelKey);
  return node;
}

function labelled(key, testid) {
  return el("span", { text: t(key), attrs: { "data-i18n": key, "data-testid": testid } });
}

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

// The operator's console: enroll a device from its request file, revoke a
// device or a user, and the revocations with their coverage. The
// operator's passphrase is asked for each action, sent in the request's
// body only (never in a URL, never stored), and the field is cleared
// once the node has answered.
function operatorView() {
  const MAX_REQUEST = 64 * 1024;
  let list = null;
  let listError = null;
  let enrollError = null;
  let revokeError = null;
  let enrolled = null;   // the last enrollment's answer
  let bundleUrl = null;  // its bundle, as a download
  let revoked = null;    // the last revocation made here
  let armed = false;     // the revoke button was pressed once
  let busy = false;

  // The forms are made once per opening: what the operator typed (and the
  // chosen file) stays while the list below is redrawn.
  const file = el("input", { attrs: { type: "file", "data-testid": "enroll-file", accept: ".request,application/octet-stream", "data-i18n-label": "request_file" } });
  file.setAttribute("aria-label", t("request_file"));
  const user = field("user_id", "enroll-user");
  const name = field("display_name_optional", "enroll-name");
  const org = field("org_unit", "enroll-org");
  const role = el("select", { attrs: { "data-testid": "enroll-role", "data-i18n-label": "role" } },
    el("option", { text: "member", attrs: { value: "member" } }),
    el("option", { text: "relay", attrs: { value: "relay" } }));
  const enrollPass = field("passphrase", "enroll-passphrase", "password");
  const enrollButton = el("button", { className: "primary", text: t("enroll"), attrs: { type: "submit", "data-testid": "enroll-submit", "data-i18n": "enroll" } });
  const enrollResult = el("div", { className: "operator-result", attrs: { "data-testid": "enroll-result", role: "status" } });
  const enrollForm = el("form", { attrs: { "data-testid": "enroll-form" } },
    el("label", { className: "file-label" }, labelled("request_file"), file),
    user, name, org, role, enrollPass, enrollButton);

  const kind = el("select", { attrs: { "data-testid": "revoke-kind", "data-i18n-label": "revoke_what" } },
    el("option", { text: t("scope_device"), attrs: { value: "device", "data-i18n": "scope_device" } }),
    el("option", { text: t("scope_user"), attrs: { value: "user", "data-i18n": "scope_user" } }));
  const target = field("device_or_user", "revoke-target");
  const reason = field("reason", "revoke-reason");
  const wipe = el("input", { attrs: { type: "checkbox", "data-testid": "revoke-wipe", checked: true } });
  const revokePass = field("passphrase", "revoke-passphrase", "password");
  const revokeButton = el("button", { className: "danger", attrs: { type: "submit", "data-testid": "revoke-submit" } });
  const revokeResult = el("div", { className: "operator-result", attrs: { "data-testid": "revoke-result", role: "status" } });
  const revokeForm = el("form", { attrs: { "data-testid": "revoke-form" } },
    kind, target, reason, el("label", {}, wipe, labelled("wipe_order")), revokePass, revokeButton);
  const disarm = () => { if (armed) { armed = false; state.dialog(); } };
  for (const input of [kind, target, reason, wipe]) input.addEventListener("change", disarm);

  enrollForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (busy) return;
    enrollError = null;
    const chosen = file.files[0];
    if (!chosen) { enrollError = t("choose_request"); state.dialog(); return; }
    if (chosen.size > MAX_REQUEST) { enrollError = t("request_too_big"); state.dialog(); return; }
    busy = true;
    try {
      const bytes = new Uint8Array(await chosen.arrayBuffer());
      const request = { request: "enroll", file: toHex(bytes), user: user.value.trim(), org: org.value.trim(), role: role.value, passphrase: enrollPass.value };
      if (name.value.trim()) request.display_name = name.value.trim();
      enrolled = await call(request);
      if (bundleUrl) URL.revokeObjectURL(bundleUrl);
      bundleUrl = URL.createObjectURL(new Blob([fromHex(enrolled.bundle)], { type: "application/octet-stream" }));
      enrolled.bundle = null;
      file.value = "";
    } catch (err) {
      enrollError = err.message;
    } finally {
      enrollPass.value = "";
      busy = false;
    }
    state.dialog();
  });

  revokeForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (busy) return;
    revokeError = null;
    const what = target.value.trim();
    if (!what || !reason.value.trim()) { revokeError = t("revoke_needs"); state.dialog(); return; }
    if (!armed) { armed = true; state.dialog(); return; }
    armed = false;
    busy = true;
    try {
      const request = { request: "agency_revoke", reason: reason.value.trim(), wipe: wipe.checked, passphrase: revokePass.value };
      request[kind.value] = what;
      revoked = await call(request);
      target.value = "";
      reason.value = "";
    } catch (err) {
      revokeError = err.message;
    } finally {
      revokePass.value = "";
      busy = false;
    }
    load();
  });

  const load = async () => {
    try { list = await call({ request: "revocations" }); listError = null; } catch (e) { listError = e.message; list = list || []; }
    state.dialog();
  };

  // Persistent parts: redrawing never moves the forms (a field being
  // typed in keeps its focus); only the slots below change.
  const head = el("p", { className: "muted" });
  const enrollErrorSlot = el("div");
  const revokeErrorSlot = el("div");
  const listSlot = el("div");
  const heading = (key) => el("h3", { text: t(key), attrs: { "data-i18n": key } });
  const parts = [head, heading("enroll_device"), enrollForm, enrollErrorSlot, enrollResult,
    heading("revoke_device_or_user"), revokeForm, revokeErrorSlot, revokeResult,
    heading("revocations"), listSlot];
  const slotError = (slot, message, testid) => slot.replaceChildren(
    message ? el("p", { className: "error", text: message, attrs: { role: "alert", "data-testid": testid } }) : "");

  showDialog("operator", (body) => {
    if (body.firstChild !== head) body.replaceChildren(...parts);
    const c = state.console;
    head.textContent = c ? `${c.agency} · ${t("operator")} ${c.operator_name} (${c.operator}) · ${t("root_fingerprint")} ${c.root_fingerprint}` : "";
    const confirmText = `${t("confirm_operator_revoke")}: ${target.value.trim()}${wipe.checked ? ` (${t("wipe_order")})` : ""}`;
    revokeButton.textContent = armed ? confirmText : t("revoke");
    revokeButton.classList.toggle("armed", armed);
    slotError(enrollErrorSlot, enrollError, "enroll-error");
    slotError(revokeErrorSlot, revokeError, "revoke-error");
    enrollResult.replaceChildren();
    if (enrolled) {
      const fileName = `${enrolled.user}-${String(enrolled.device).slice(-8)}.bundle`;
      enrollResult.append(
        el("div", { className: "state", text: `${t("enrolled")}: ${enrolled.display_name} (${enrolled.user}) · ${enrolled.org_unit} · ${enrolled.role} · ${String(enrolled.device).slice(-8)}` }),
        el("a", { className: "download", text: `${t("download_bundle")} (${fileName})`, attrs: { href: bundleUrl, download: fileName, "data-testid": "bundle-download", "data-device": enrolled.device } }),
        el("div", { className: "muted", text: t("bundle_private") }));
    }
    revokeResult.replaceChildren();
    if (revoked) {
      revokeResult.append(el("div", { className: "state", text: `${t("revoked")}: ${revoked.display_name} (${revoked.user}) · ${revoked.reason}${revoked.wipe ? ` · ${t("wipe_order")}` : ""}` }));
    }
    listSlot.replaceChildren(list ? revocationItems(list) : el("p", { className: "muted", text: "…" }), listError ? errorLine(listError) : "");
  }, load);
  load();
  // Coverage grows as peers are shown the revocations: read again while open.
  const poll = setInterval(() => { if (state.reload === load) load(); else clearInterval(poll); }, 3000);
}

// Whether this device is an operator's console: the Operator button then shows.
async function checkConsole() {
  try {
    state.console = await call({ request: "operator_console" });
  } catch (e) {
    state.console = null;
  }
  $("operator-button").hidden = !state.console;
}

async function searchHistory(text) {
  let found = [];
  let error = null;
  try { found = await post("/api/search", { text }); } catch (e) { error = e.message; }
  showDialog("results", (body) => {
    const ul = el("ol", { className: "messages" });
    for (const m of found) {
      const item = renderMessage(m);
      item.classList.add("found");
      item.setAttribute("data-testid", "search-result");
      item.insertBefore(el("div", { className: "muted", text: m.room_name }), item.firstChild);
      item.tabIndex = 0;
      const go = () => { $("dialog").close(); openRoom(m.room); };
      item.addEventListener("click", go);
      item.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
      ul.appendChild(item);
    }
    body.replaceChildren(found.length === 0 && !error ? el("p", { className: "empty", text: t("no_results") }) : ul, error ? errorLine(error) : null);
  });
}

// ---------------------------------------------------------------- start

function start() {
  $("language").addEventListener("change", (e) => {
    state.lang = e.target.value;
    localStorage.setItem("baro.lang", state.lang);
    applyLanguage();
  });
  $("composer-form").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  $("composer").addEventListener("keydown", (e) => {
    // No send while an input method composes (a Hangul syllable being
    // typed): the Enter ends the composition, it does not send.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      send();
    }
  });
  $("attach-input").addEventListener("change", (e) => {
    const files = [...e.target.files];
    e.target.value = "";
    attach(files);
  });
  const conversation = $("conversation");
  conversation.addEventListener("dragover", (e) => { e.preventDefault(); conversation.classList.add("dropping"); });
  conversation.addEventListener("dragleave", () => conversation.classList.remove("dropping"));
  conversation.addEventListener("drop", (e) => {
    e.preventDefault();
    conversation.classList.remove("dropping");
    if (e.dataTransfer && e.dataTransfer.files.length > 0) attach([...e.dataTransfer.files]);
  });
  $("older").addEventListener("click", () => { state.limit += MORE; loadMessages("top"); });
  $("back").addEventListener("click", closeRoom);
  $("new-chat").addEventListener("click", newChat);
  $("new-group").addEventListener("click", newGroup);
  $("room-info").addEventListener("click", roomInfo);
  $("devices-button").addEventListener("click", devices);
  $("revocations-button").addEventListener("click", revocationList);
  $("operator-button").addEventListener("click", operatorView);
  $("dialog").addEventListener("close", () => { state.dialog = null; state.reload = null; });
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("search-input").value.trim();
    if (text) searchHistory(text);
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) markRead(); });
  // Notifications are asked for on a first click (browsers refuse otherwise).
  document.addEventListener("click", () => {
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
  }, { once: true });
  applyLanguage();
  listen();
  refreshStatus();
  refreshRooms();
  checkConsole();
  setInterval(refreshStatus, STATUS_EVERY);
}

start();
