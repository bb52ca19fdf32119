/* The course's browser client for WS /chat/{room}/{username} (lesson 04, "chat application").

   Why it is built the way it is:
   - User text reaches the page only through textContent and createElement, never as markup:
     a chat message is data, and data parsed as HTML is stored XSS (the seed's client had it).
   - Every room event has an id. The page shows each id once, remembers the highest, and
     reconnects with ?last_id=<highest>, so a dropped connection loses nothing and doubles nothing.
   - A sent message carries a client_msg_id and stays in the outbox until the server acks it: text
     typed while offline is sent after the reconnect, and a resend is deduplicated by the server.
   - Reconnects back off exponentially with full jitter, so a restarted server is not hit by all
     of its clients in the same instant.
   - A connection that has been quiet for a while sends {"type":"ping"}; if nothing at all comes
     back in time, it is dead (a laptop that slept, a network that changed) and the page
     reconnects. JavaScript can neither send WebSocket pings nor see them: hence this app-level
     heartbeat (lesson 09). The server detects a dead page with its own protocol pings.
   - Signing in (lesson 06) posts the form to POST /session, which answers with an HttpOnly cookie
     this script never sees; the browser sends it with the chat's WebSocket handshake, and the
     server closes with 4003 if it names someone other than the user in the URL. GET /session
     tells the page whom the cookie names (after a reload, say); DELETE /session signs out.
   window.chatState is a read-only view of all this, for tests and the curious. */
"use strict";

const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 10_000;
const STABLE_AFTER_MS = 5_000; // a connection that stayed open this long resets the backoff
const MAX_RENDERED = 500; // lines (and ids) kept, so a long session's memory stays bounded
const MAX_IN_FLIGHT = 8; // sent but not yet acked: well under the server's rate-limit burst
const RATE_LIMITED_RETRY_MS = 1_000;
const USERNAME_TAKEN = 4000;
const POLICY_VIOLATION = 1008; // e.g. a name the server refuses: retrying cannot help
const TOKEN_REFUSED = 4003; // a demo user's name without signing in, or a cookie for another user
const HEARTBEAT_MS = 25_000; // ping a connection that has been this quiet
const HEARTBEAT_TIMEOUT_MS = 10_000; // and give up on it if nothing comes back this soon
const NAME_PATTERN = /^[\p{L}\p{N}_.-]{1,32}$/u;
// The app's root URL, from this script's own URL (…/static/chat.js): right behind a proxy too.
const APP_ROOT = new URL("..", document.currentScript.src);

const ui = Object.fromEntries(
  [
    "signin-form", "username", "password", "signin", "account", "account-name", "signout",
    "signin-error", "join-form", "name", "room", "join", "leave", "status", "conversation",
    "messages", "outbox", "users", "user-count", "send-form", "content", "send",
  ].map((id) => [id, document.getElementById(id)]),
);

const chat = {
  session: "checking", // checking | signed-out | signed-in: what GET /session last said
  user: null, // the signed-in user, or null
  room: "",
  name: "",
  phase: "idle", // idle | connecting | open | reconnecting | closed
  detail: "", // why the last connection ended
  socket: null,
  generation: 0, // bumped for every new socket: events of older sockets are ignored
  attempt: 0,
  retryTimer: 0,
  retryAt: 0,
  retrySoon: false, // back online while a connection attempt was in flight: no backoff after it
  lastHeard: 0, // when the current socket last received anything
  heartbeatTimer: 0,
  pongTimer: 0, // set while a ping waits for an answer
  pongs: 0,
  tickTimer: 0,
  openedAt: 0,
  connects: 0,
  admitted: false, // the server has sent us something in this room: the name was ours
  resumeFrom: null, // the last_id this connection asked for, until its first event arrives
  gapShown: false, // this connection already said that something is missing
  lastId: null,
  seen: new Set(), // ids on the page, oldest first
  outbox: new Map(), // client_msg_id -> content, until acked
  inFlight: new Set(), // client_msg_ids sent on the current socket
  rateLimitTimer: 0,
  users: [],
  usersBusy: false,
  usersAgain: false,
  gaps: 0,
};

window.chatState = Object.freeze({
  get session() { return chat.session; },
  get user() { return chat.user; },
  get state() { return chat.phase; },
  get detail() { return chat.detail; },
  get room() { return chat.room; },
  get name() { return chat.name; },
  get lastId() { return chat.lastId; },
  get ids() { return [...chat.seen]; },
  get outbox() { return [...chat.outbox.values()]; },
  get users() { return [...chat.users]; },
  get gaps() { return chat.gaps; },
  get connects() { return chat.connects; },
  get pongs() { return chat.pongs; },
});

// Connection ----------------------------------------------------------------------------------

function join(room, name) {
  disconnect("switching rooms");
  Object.assign(chat, { room, name, attempt: 0, retrySoon: false, connects: 0, admitted: false });
  Object.assign(chat, { lastId: null, gaps: 0, users: [] });
  chat.seen.clear();
  chat.outbox.clear();
  ui.messages.replaceChildren();
  renderOutbox();
  renderUsers();
  history.replaceState(null, "", `?${new URLSearchParams({ room, name })}`);
  connect();
}

function disconnect(reason) {
  chat.generation += 1; // the old socket's close event is now ignored: this close is on purpose
  clearTimeout(chat.retryTimer);
  stopHeartbeat();
  if (chat.socket) chat.socket.close(1000, reason);
  chat.socket = null;
}

function connect() {
  clearTimeout(chat.retryTimer);
  const generation = ++chat.generation;
  const current = () => generation === chat.generation;
  const path = `chat/${encodeURIComponent(chat.room)}/${encodeURIComponent(chat.name)}`;
  const url = new URL(path, APP_ROOT);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (chat.lastId !== null) url.searchParams.set("last_id", String(chat.lastId));
  chat.resumeFrom = chat.lastId;
  chat.gapShown = false;
  chat.openedAt = 0;
  setPhase("connecting");
  const socket = new WebSocket(url);
  chat.socket = socket;
  socket.addEventListener("open", () => {
    if (!current()) return;
    chat.openedAt = Date.now();
    chat.connects += 1;
    chat.retrySoon = false;
    chat.inFlight.clear();
    setPhase("open");
    startHeartbeat(socket, current);
    pump();
    refreshUsers();
  });
  socket.addEventListener("message", (event) => {
    if (!current()) return;
    chat.admitted = true; // "Username taken" comes before any frame
    chat.lastHeard = Date.now();
    receive(event.data);
  });
  socket.addEventListener("close", (event) => { if (current()) closed(event); });
}

function closed(event) {
  chat.socket = null;
  chat.inFlight.clear();
  stopHeartbeat();
  const why = event.reason ? `${event.reason} (${event.code})` : `code ${event.code}`;
  if (event.code === TOKEN_REFUSED) {
    // Every retry would carry the same cookie and be refused the same way: stop and say why.
    refused(event.reason || "refused");
    return;
  }
  if ((event.code === USERNAME_TAKEN || event.code === POLICY_VIOLATION) && !chat.admitted) {
    // Someone else has the name: retrying cannot help, so let the person pick another. (On a
    // reconnect it is most likely our own old connection, which the server has not yet seen
    // die: that one times out, so keep trying.)
    setPhase("closed", event.reason || "Username taken");
    return;
  }
  if (chat.openedAt && Date.now() - chat.openedAt >= STABLE_AFTER_MS) chat.attempt = 0;
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(chat.attempt, 16));
  // Full jitter: clients spread out instead of stampeding.
  const delay = chat.retrySoon ? 0 : Math.random() * ceiling;
  chat.retrySoon = false;
  chat.attempt += 1;
  chat.retryAt = Date.now() + delay;
  chat.retryTimer = setTimeout(connect, delay);
  setPhase("reconnecting", why);
}

async function refused(reason) {
  const { name, generation } = chat;
  setPhase("closed", `not allowed to chat as ${name}: ${reason}`);
  await checkSession(); // the cookie may have expired, or another tab signed in as someone else
  if (generation !== chat.generation) return; // joined again meanwhile
  const now = chat.user === null ? "Sign in again." : `You are signed in as ${chat.user}.`;
  notice(`The server refused to let you chat as ${name} (${reason}). ${now}`, "error");
}

function startHeartbeat(socket, current) {
  stopHeartbeat();
  chat.lastHeard = Date.now();
  chat.heartbeatTimer = setInterval(() => {
    if (!current() || chat.pongTimer) return;
    if (Date.now() - chat.lastHeard < HEARTBEAT_MS) return; // its traffic is proof enough
    const pingedAt = Date.now();
    socket.send(JSON.stringify({ type: "ping" }));
    chat.pongTimer = setTimeout(() => {
      chat.pongTimer = 0;
      if (!current() || chat.lastHeard >= pingedAt) return;
      // Dead: its closing handshake could take minutes, so stop listening to it and move on.
      chat.generation += 1;
      socket.close(1000, "no answer to the heartbeat");
      closed({ code: 1006, reason: "no answer to the heartbeat" });
    }, HEARTBEAT_TIMEOUT_MS);
  }, HEARTBEAT_MS / 5);
}

function stopHeartbeat() {
  clearInterval(chat.heartbeatTimer);
  clearTimeout(chat.pongTimer);
  chat.pongTimer = 0;
}

// Back on the network: retrying now beats waiting out a long backoff.
window.addEventListener("online", () => {
  if (chat.phase === "reconnecting") connect();
  else if (chat.phase === "connecting") chat.retrySoon = true; // if this attempt fails
});

// Frames from the server -----------------------------------------------------------------------

function receive(data) {
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    notice("The server sent a frame that is not JSON; it was ignored.", "error");
    return;
  }
  switch (frame.type) {
    case "message":
    case "join":
    case "leave":
      roomEvent(frame);
      break;
    case "resume":
      if (!frame.complete) gap("Some messages sent while you were away are no longer available.");
      break;
    case "ack":
      acked(frame.client_msg_id);
      break;
    case "error":
      serverError(frame);
      break;
    case "pong":
      chat.pongs += 1; // any frame proves the connection alive (lastHeard); this counts answers
      break;
    default: // a newer server's frame: ignore it rather than break
  }
}

function roomEvent(frame) {
  if (!Number.isInteger(frame.id)) return;
  if (chat.resumeFrom !== null) {
    // Asked for events after N, the server sends only ids above N: a lower one means it
    // restarted with an empty history and counts from 1 again, so our ids mean nothing now.
    if (frame.id <= chat.resumeFrom) {
      chat.seen.clear();
      chat.lastId = null;
      if (!chat.gapShown) gap("The server restarted: some messages are no longer available.");
    }
    chat.resumeFrom = null;
  }
  if (chat.seen.has(frame.id)) return; // already on the page
  remember(frame.id);
  render(frame);
  if (frame.type === "message") {
    if (frame.username === chat.name && frame.client_msg_id) acked(frame.client_msg_id);
  } else {
    refreshUsers();
  }
}

function remember(id) {
  chat.seen.add(id);
  chat.lastId = chat.lastId === null ? id : Math.max(chat.lastId, id);
  if (chat.seen.size > MAX_RENDERED) chat.seen.delete(chat.seen.values().next().value);
}

function gap(text) {
  chat.gaps += 1;
  chat.gapShown = true;
  notice(text, "gap");
}

function serverError(frame) {
  notice(`Server: ${frame.message ?? frame.code}`, "error");
  if (frame.code !== "rate_limited") return;
  // The dropped frame is not named: after a pause, resend everything unacked (deduped by id).
  clearTimeout(chat.rateLimitTimer);
  chat.rateLimitTimer = setTimeout(() => { chat.inFlight.clear(); pump(); }, RATE_LIMITED_RETRY_MS);
}

// Sending --------------------------------------------------------------------------------------

function send(content) {
  chat.outbox.set(newMessageId(), content);
  renderOutbox();
  pump();
}

function pump() {
  const socket = chat.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  for (const [id, content] of chat.outbox) {
    if (chat.inFlight.size >= MAX_IN_FLIGHT) break;
    if (chat.inFlight.has(id)) continue;
    socket.send(JSON.stringify({ type: "message", content, client_msg_id: id }));
    chat.inFlight.add(id);
  }
}

function acked(id) {
  if (!chat.outbox.delete(id)) return;
  chat.inFlight.delete(id);
  renderOutbox();
  pump();
}

function newMessageId() {
  // randomUUID exists only in secure contexts (https, localhost); getRandomValues everywhere.
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Presence -------------------------------------------------------------------------------------

async function refreshUsers() {
  if (chat.usersBusy) {
    chat.usersAgain = true; // one more fetch after this one, not one per event
    return;
  }
  chat.usersBusy = true;
  chat.usersAgain = false;
  const room = chat.room;
  try {
    const url = new URL(`rooms/${encodeURIComponent(room)}/users`, APP_ROOT);
    const response = await fetch(url, { cache: "no-store" });
    if (response.ok && room === chat.room) {
      const body = await response.json();
      chat.users = Array.isArray(body.users) ? body.users.map(String) : [];
      renderUsers();
    }
  } catch {
    // Presence is best effort: the next join or leave fetches it again.
  } finally {
    chat.usersBusy = false;
  }
  if (chat.usersAgain) refreshUsers();
}

// Rendering: text only ever goes in through textContent ----------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function clock(timestamp) {
  const when = new Date(timestamp);
  if (Number.isNaN(when.getTime())) return "";
  return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function render(frame) {
  const item = element("li", frame.type);
  item.dataset.id = String(frame.id);
  const time = element("time", "", clock(frame.timestamp));
  time.dateTime = String(frame.timestamp ?? "");
  item.append(time);
  if (frame.type === "message") {
    if (frame.username === chat.name) item.classList.add("mine");
    item.append(element("span", "user", frame.username), element("span", "text", frame.content));
  } else {
    item.append(element("span", "text", frame.content));
  }
  append(item);
}

function notice(text, kind) {
  append(element("li", `notice ${kind}`, text));
}

function append(item) {
  const box = ui.conversation;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  ui.messages.append(item);
  while (ui.messages.childElementCount > MAX_RENDERED) ui.messages.firstElementChild.remove();
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function renderOutbox() {
  const items = [...chat.outbox.values()].map((content) => {
    const item = element("li", "message pending");
    item.append(
      element("span", "user", chat.name),
      element("span", "text", content),
      element("span", "sending", "sending…"),
    );
    return item;
  });
  ui.outbox.replaceChildren(...items);
}

function renderUsers() {
  const items = chat.users.map((user) => element("li", user === chat.name ? "me" : "", user));
  ui.users.replaceChildren(...items);
  ui["user-count"].textContent = chat.users.length ? `(${chat.users.length})` : "";
}

function setPhase(phase, detail = "") {
  chat.phase = phase;
  chat.detail = detail;
  clearInterval(chat.tickTimer);
  if (phase === "reconnecting") chat.tickTimer = setInterval(renderStatus, 200);
  renderStatus();
  ui.users.classList.toggle("stale", phase !== "open"); // presence is as of the last connection
  const inRoom = phase !== "idle" && phase !== "closed";
  ui.content.disabled = !inRoom;
  ui.send.disabled = !inRoom;
  ui.leave.disabled = !inRoom;
}

function renderStatus() {
  const texts = {
    idle: "not connected",
    connecting: "connecting…",
    open: `open: ${chat.name} in ${chat.room}`,
    reconnecting: `reconnecting in ${(Math.max(0, chat.retryAt - Date.now()) / 1000).toFixed(1)} s`,
    closed: `closed: ${chat.detail}`,
  };
  ui.status.textContent = texts[chat.phase];
  ui.status.dataset.state = chat.phase;
  ui.status.title = chat.detail; // why the last connection ended
}

// Signing in: the token lives in an HttpOnly cookie, out of this script's reach ----------------

const SESSION_URL = new URL("session", APP_ROOT);

async function checkSession() {
  try {
    const response = await fetch(SESSION_URL, { cache: "no-store", credentials: "same-origin" });
    if (response.ok) signedIn(String((await response.json()).user_id));
    else signedOut();
  } catch {
    signedOut(); // the server cannot be reached: nobody to be signed in to
  }
}

async function signIn() {
  showSigninError("");
  ui.signin.disabled = true;
  const form = new URLSearchParams(new FormData(ui["signin-form"])); // the OAuth2 password form
  ui.password.value = "";
  try {
    const response = await fetch(SESSION_URL, {
      method: "POST",
      body: form,
      credentials: "same-origin",
    });
    if (response.status === 401) {
      showSigninError("Wrong username or password.");
    } else if (!response.ok) {
      showSigninError(`Sign-in failed: HTTP ${response.status}.`);
    } else {
      signedIn(String((await response.json()).user_id));
      if (valid(ui.room)) join(ui.room.value, chat.user);
    }
  } catch {
    showSigninError("Sign-in failed: the server cannot be reached.");
  } finally {
    ui.signin.disabled = false;
  }
}

async function signOut() {
  ui.signout.disabled = true;
  try {
    const response = await fetch(SESSION_URL, { method: "DELETE", credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
  } catch {
    showSigninError("Sign-out failed: you are still signed in.");
    return;
  } finally {
    ui.signout.disabled = false;
  }
  // The server checked the cookie at the handshake only: an open socket would go on as the user.
  leave("you signed out");
  signedOut();
  ui.name.value = guestName();
  history.replaceState(null, "", `?${new URLSearchParams({ room: ui.room.value })}`);
}

function signedIn(user) {
  Object.assign(chat, { session: "signed-in", user });
  renderAccount();
}

function signedOut() {
  Object.assign(chat, { session: "signed-out", user: null });
  renderAccount();
}

function renderAccount() {
  const isIn = chat.user !== null;
  ui["signin-form"].hidden = isIn;
  ui.account.hidden = !isIn;
  ui["account-name"].textContent = chat.user ?? "";
  // A convenience, not the protection: the server refuses any other name with 4003.
  ui.name.readOnly = isIn;
  if (isIn) {
    ui.name.value = chat.user;
    showSigninError("");
  }
}

function showSigninError(text) {
  ui["signin-error"].textContent = text;
  ui["signin-error"].hidden = !text;
}

// Forms ----------------------------------------------------------------------------------------

function valid(input) {
  input.setCustomValidity(NAME_PATTERN.test(input.value) ? "" : "1–32 letters, digits, _ . or -");
  return input.reportValidity();
}

ui["join-form"].addEventListener("submit", (event) => {
  event.preventDefault();
  if (valid(ui.name) && valid(ui.room)) join(ui.room.value, ui.name.value);
});

function leave(detail) {
  disconnect("left the room");
  chat.users = [];
  renderUsers();
  setPhase("closed", detail);
}

ui.leave.addEventListener("click", () => leave("you left the room"));

ui["signin-form"].addEventListener("submit", (event) => {
  event.preventDefault();
  signIn();
});

ui.signout.addEventListener("click", signOut);

ui["send-form"].addEventListener("submit", (event) => {
  event.preventDefault();
  const content = ui.content.value;
  if (!content.trim()) return;
  send(content);
  ui.content.value = "";
  ui.content.focus();
});

function guestName() {
  return `guest-${Math.floor(Math.random() * 9000) + 1000}`;
}

// Name and room from the query string (?room=general&name=ana) join at once, once the page
// knows whether it is signed in. Signed in, it joins as its user without a name too; with one
// that is not its user's, it joins as asked, and the server refuses (4003).
async function start() {
  const params = new URLSearchParams(location.search);
  ui.name.value = params.get("name") ?? guestName();
  ui.room.value = params.get("room") ?? "general";
  setPhase("idle");
  await checkSession();
  if (params.has("name")) ui.name.value = params.get("name");
  else if (chat.user === null) return;
  if (valid(ui.name) && valid(ui.room)) join(ui.room.value, ui.name.value);
}

start();
