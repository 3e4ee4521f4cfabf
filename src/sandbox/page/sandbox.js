/* warmline sandbox page: "try warmline without a Slack workspace".
 *
 * One script, no build step, no dependency, no external URL. It long-polls the sandbox server's emulated Slack
 * workspace (GET /sandbox/api/state) and draws it the way Slack would; every gesture (a slash command, a block
 * action, a view submission, a clock move, an outbox feedback) is POSTed back, and the server turns it into the
 * request real Slack would send to the bot. The contract is SANDBOX_API.md. The page decides nothing the bot
 * decides: it shows state and sends gestures, plus the few checks Slack itself does in the client (required
 * inputs, confirm dialogs).
 *
 * Safety invariant: nothing that comes from the server is ever parsed as HTML. Every node is built with
 * createElement/textContent, and every URL put into href/src goes through safeUrl() (contact names, message bodies
 * and email subjects are user data: an injection here would be a real bug).
 *
 * Sections:
 *   1. Utilities            5. Server calls and toasts    9. Outbox
 *   2. Emoji                6. State and polling         10. Clock
 *   3. mrkdwn               7. Workspace view            11. Kit mode (and KIT_EXTRA, the every-type layout)
 *   4. Block Kit renderer   8. Modals and confirm dialogs 12. Start-up
 */
'use strict';

/* ============================================================================================================
 * 1. Utilities
 * ========================================================================================================== */

/** Properties set as DOM properties rather than attributes (so `value` is the live value, not the default). */
const DOM_PROPS = new Set(['value', 'checked', 'selected', 'disabled', 'hidden', 'multiple']);

/**
 * Builds an element. `props`: `class`, `text`, `dataset` (object), `on<event>` (function), DOM properties from
 * DOM_PROPS, anything else as an attribute; null/undefined/false props are skipped. Children: nodes or strings
 * (strings become text nodes, never HTML), arrays are flattened, null/false skipped.
 */
function h(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) node.dataset[k] = String(v);
    } else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (DOM_PROPS.has(key)) node[key] = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  appendAll(node, children);
  return node;
}

function appendAll(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
const clone = (value) => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let uidCounter = 0;
const uid = (prefix) => `${prefix}${++uidCounter}`;

/**
 * The only gate for URLs that go into href/src. Allows http(s), mailto and tel; data: images only where asked
 * (`images`), and same-origin absolute paths only where asked (`relative`, for the server's own html_url).
 * Anything else (javascript:, vbscript:, data:text/html, protocol-relative //host) is refused: null.
 */
function safeUrl(raw, { images = false, relative = false } = {}) {
  if (typeof raw !== 'string') return null;
  const url = raw.trim();
  if (/^(https?:|mailto:|tel:)/i.test(url)) return url;
  if (images && /^data:image\/(png|gif|jpeg|jpg|webp|svg\+xml)[;,]/i.test(url)) return url;
  if (relative && url.startsWith('/') && !url.startsWith('//') && !url.startsWith('/\\')) return url;
  return null;
}

/** Slack timestamps ("1765134000.000100") compared exactly (a double would lose the micro-seconds). */
function compareTs(a, b) {
  const [aSec, aFrac = ''] = String(a).split('.');
  const [bSec, bFrac = ''] = String(b).split('.');
  const bySecond = Number(aSec) - Number(bSec);
  if (bySecond !== 0) return Math.sign(bySecond);
  const af = aFrac.padEnd(6, '0');
  const bf = bFrac.padEnd(6, '0');
  return af < bf ? -1 : af > bf ? 1 : 0;
}

const tsToDate = (ts) => new Date(Number.parseFloat(ts) * 1000);
const formatTime = (date) => date.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
const formatDateTime = (date) =>
  date.toLocaleString([], { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const formatDay = (date) => date.toLocaleDateString([], { weekday: 'long', month: 'long', day: 'numeric' });
const dayKey = (date) => `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
const pad2 = (n) => String(n).padStart(2, '0');

/** A parseable ISO date, or null (the server's dates are RFC 3339; a bad one must not break a render). */
function parseDate(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

function storageGet(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null; // storage can be disabled; the URL still carries the choice
  }
}

function storageSet(key, value) {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    /* see storageGet */
  }
}

/** Runs `fn` with `node` marked busy (spinner, disabled), so a double click cannot send a gesture twice. */
async function withBusy(node, fn) {
  const target = node && node.isConnected ? node : null;
  if (target) {
    target.classList.add('is-busy');
    target.setAttribute('aria-busy', 'true');
    if ('disabled' in target) target.disabled = true;
  }
  try {
    return await fn();
  } finally {
    if (target) {
      target.classList.remove('is-busy');
      target.removeAttribute('aria-busy');
      if ('disabled' in target) target.disabled = false;
    }
  }
}

/* ============================================================================================================
 * 2. Emoji: Slack shortcodes to unicode. Every shortcode warmline's layouts and code use is in here (grep
 *    blocks/*.j2 and src/ for :name:), plus the common ones. Unknown shortcodes stay as text, as in Slack.
 * ========================================================================================================== */

const EMOJI = {
  // warmline's own vocabulary
  white_check_mark: '✅', x: '❌', warning: '⚠️', heavy_minus_sign: '➖', no_entry: '⛔', no_entry_sign: '🚫',
  hourglass: '⌛', hourglass_flowing_sand: '⏳', wastebasket: '🗑️', speech_balloon: '💬', rotating_light: '🚨',
  grey_question: '❔', floppy_disk: '💾', calendar: '📆', bell: '🔔',
  // status and marks
  heavy_check_mark: '✔️', ballot_box_with_check: '☑️', heavy_multiplication_x: '✖️', negative_squared_cross_mark: '❎',
  question: '❓', exclamation: '❗', grey_exclamation: '❕', bangbang: '‼️', interrobang: '⁉️',
  heavy_plus_sign: '➕', heavy_division_sign: '➗', information_source: 'ℹ️', sparkle: '❇️',
  eight_spoked_asterisk: '✳️', recycle: '♻️', beginner: '🔰', 100: '💯', stop_sign: '🛑', construction: '🚧',
  triangular_flag_on_post: '🚩', checkered_flag: '🏁', white_flag: '🏳️', new: '🆕', free: '🆓', ok: '🆗',
  cool: '🆒', up: '🆙', sos: '🆘', lock: '🔒', unlock: '🔓', key: '🔑', closed_lock_with_key: '🔐',
  shield: '🛡️', no_bell: '🔕', zzz: '💤',
  // shapes and colours
  large_green_circle: '🟢', large_yellow_circle: '🟡', large_orange_circle: '🟠', red_circle: '🔴',
  large_blue_circle: '🔵', large_purple_circle: '🟣', white_circle: '⚪', black_circle: '⚫',
  large_green_square: '🟩', large_yellow_square: '🟨', large_red_square: '🟥', large_blue_square: '🟦',
  white_large_square: '⬜', black_large_square: '⬛', small_blue_diamond: '🔹', small_orange_diamond: '🔸',
  // arrows and media controls
  arrow_right: '➡️', arrow_left: '⬅️', arrow_up: '⬆️', arrow_down: '⬇️', arrow_upper_right: '↗️',
  arrow_lower_right: '↘️', arrows_counterclockwise: '🔄', arrows_clockwise: '🔃', repeat: '🔁',
  leftwards_arrow_with_hook: '↩️', arrow_right_hook: '↪️', arrow_forward: '▶️', arrow_backward: '◀️',
  pause_button: '⏸️', double_vertical_bar: '⏸️', black_square_for_stop: '⏹️', stop_button: '⏹️',
  record_button: '⏺️', fast_forward: '⏩', rewind: '⏪', twisted_rightwards_arrows: '🔀',
  // time
  stopwatch: '⏱️', timer_clock: '⏲️', alarm_clock: '⏰', watch: '⌚', date: '📅', spiral_calendar_pad: '🗓️',
  clock1: '🕐', clock2: '🕑', clock3: '🕒', clock4: '🕓', clock5: '🕔', clock6: '🕕', clock7: '🕖', clock8: '🕗',
  clock9: '🕘', clock10: '🕙', clock11: '🕚', clock12: '🕛', clock130: '🕜', clock230: '🕝', clock330: '🕞',
  clock430: '🕟', clock530: '🕠', clock630: '🕡', clock730: '🕢', clock830: '🕣', clock930: '🕤',
  clock1030: '🕥', clock1130: '🕦', clock1230: '🕧',
  // messaging and office
  email: '✉️', envelope: '✉️', 'e-mail': '📧', incoming_envelope: '📨', envelope_with_arrow: '📩',
  mailbox: '📫', mailbox_closed: '📪', mailbox_with_mail: '📬', mailbox_with_no_mail: '📭', postbox: '📮',
  inbox_tray: '📥', outbox_tray: '📤', package: '📦', iphone: '📱', calling: '📲', phone: '☎️',
  telephone_receiver: '📞', computer: '💻', desktop_computer: '🖥️', keyboard: '⌨️', printer: '🖨️',
  memo: '📝', pencil: '📝', pencil2: '✏️', writing_hand: '✍️', clipboard: '📋', pushpin: '📌',
  round_pushpin: '📍', paperclip: '📎', link: '🔗', mag: '🔍', mag_right: '🔎', bulb: '💡', gear: '⚙️',
  hammer_and_wrench: '🛠️', wrench: '🔧', hammer: '🔨', bookmark: '🔖', books: '📚', book: '📖',
  newspaper: '📰', page_facing_up: '📄', page_with_curl: '📃', file_folder: '📁', open_file_folder: '📂',
  card_index: '📇', card_file_box: '🗃️', label: '🏷️', thought_balloon: '💭', left_speech_bubble: '🗨️',
  loudspeaker: '📢', mega: '📣', satellite: '📡', battery: '🔋', electric_plug: '🔌', flashlight: '🔦',
  // business
  chart_with_upwards_trend: '📈', chart_with_downwards_trend: '📉', bar_chart: '📊', chart: '💹',
  moneybag: '💰', dollar: '💵', euro: '💶', credit_card: '💳', money_with_wings: '💸', briefcase: '💼',
  office: '🏢', house: '🏠', bust_in_silhouette: '👤', busts_in_silhouette: '👥', handshake: '🤝',
  dart: '🎯', trophy: '🏆', medal: '🏅', first_place_medal: '🥇', ticket: '🎫', admission_tickets: '🎟️',
  // weather and nature
  fire: '🔥', snowflake: '❄️', thermometer: '🌡️', ice_cube: '🧊', cold_face: '🥶', hot_face: '🥵',
  sunny: '☀️', cloud: '☁️', umbrella: '☔', zap: '⚡', rainbow: '🌈', droplet: '💧', ocean: '🌊',
  star: '⭐', star2: '🌟', sparkles: '✨', boom: '💥', crescent_moon: '🌙', sun_with_face: '🌞',
  seedling: '🌱', herb: '🌿', four_leaf_clover: '🍀', rose: '🌹', sunflower: '🌻', tulip: '🌷',
  evergreen_tree: '🌲', palm_tree: '🌴', cactus: '🌵', snail: '🐌', turtle: '🐢', bee: '🐝', owl: '🦉',
  penguin: '🐧', dog: '🐶', cat: '🐱', unicorn_face: '🦄', octopus: '🐙',
  // celebration, travel, food
  tada: '🎉', confetti_ball: '🎊', balloon: '🎈', gift: '🎁', rocket: '🚀', airplane: '✈️', car: '🚗',
  globe_with_meridians: '🌐', earth_africa: '🌍', world_map: '🗺️', coffee: '☕', tea: '🍵', beer: '🍺',
  beers: '🍻', wine_glass: '🍷', champagne: '🍾', pizza: '🍕', cake: '🍰', birthday: '🎂', cookie: '🍪',
  doughnut: '🍩', apple: '🍎', art: '🎨', musical_note: '🎵', headphones: '🎧', microphone: '🎤',
  camera: '📷', video_camera: '📹', movie_camera: '🎥', tv: '📺', game_die: '🎲', jigsaw: '🧩',
  // people and faces
  wave: '👋', '+1': '👍', thumbsup: '👍', '-1': '👎', thumbsdown: '👎', ok_hand: '👌', clap: '👏',
  raised_hands: '🙌', pray: '🙏', muscle: '💪', point_right: '👉', point_left: '👈', point_up: '☝️',
  point_up_2: '👆', point_down: '👇', v: '✌️', crossed_fingers: '🤞', eyes: '👀', brain: '🧠',
  raising_hand: '🙋', bow: '🙇', facepalm: '🤦', shrug: '🤷', speaking_head_in_silhouette: '🗣️',
  robot_face: '🤖', ghost: '👻', skull: '💀', see_no_evil: '🙈',
  heart: '❤️', broken_heart: '💔', yellow_heart: '💛', green_heart: '💚', blue_heart: '💙',
  purple_heart: '💜', sparkling_heart: '💖',
  smile: '😄', smiley: '😃', grinning: '😀', laughing: '😆', joy: '😂', rolling_on_the_floor_laughing: '🤣',
  slightly_smiling_face: '🙂', simple_smile: '🙂', upside_down_face: '🙃', wink: '😉', blush: '😊',
  innocent: '😇', heart_eyes: '😍', 'star-struck': '🤩', kissing_heart: '😘', yum: '😋',
  stuck_out_tongue: '😛', zany_face: '🤪', money_mouth_face: '🤑', hugging_face: '🤗', thinking_face: '🤔',
  shushing_face: '🤫', zipper_mouth_face: '🤐', neutral_face: '😐', expressionless: '😑',
  face_with_rolling_eyes: '🙄', grimacing: '😬', relieved: '😌', pensive: '😔', sleeping: '😴', mask: '😷',
  nerd_face: '🤓', sunglasses: '😎', partying_face: '🥳', face_with_monocle: '🧐', confused: '😕',
  worried: '😟', slightly_frowning_face: '🙁', white_frowning_face: '☹️', open_mouth: '😮', hushed: '😯',
  astonished: '😲', flushed: '😳', disappointed: '😞', unamused: '😒', sweat: '😓', sweat_smile: '😅',
  cry: '😢', sob: '😭', scream: '😱', tired_face: '😫', weary: '😩', angry: '😠', rage: '😡',
  exploding_head: '🤯', sweat_drops: '💦', dash: '💨',
};

const EMOJI_PATTERN = /:([a-z0-9_+'-]+):/g;

function emojiNode(name) {
  return h('span', { class: 'emoji', title: `:${name}:`, role: 'img', 'aria-label': name.replace(/_/g, ' ') }, EMOJI[name]);
}

/** Plain text with known :shortcodes: turned into emoji nodes (for plain_text objects with emoji on). */
function emojify(value) {
  const text = String(value ?? '');
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(EMOJI_PATTERN)) {
    if (!EMOJI[match[1]]) continue;
    fragment.append(text.slice(last, match.index), emojiNode(match[1]));
    last = match.index + match[0].length;
  }
  fragment.append(text.slice(last));
  return fragment;
}

/** The same, as a string (for places that only take text: <option> labels, titles, attributes). */
const emojifyString = (text) => String(text).replace(EMOJI_PATTERN, (whole, name) => EMOJI[name] || whole);

/* ============================================================================================================
 * 3. mrkdwn: Slack's message markup, rendered as DOM. Text arrives Slack-escaped (&lt; &gt; &amp;), so `<…>` is
 *    always markup (links, mentions) and the entities are decoded only in the final text nodes.
 * ========================================================================================================== */

/** Names for mentions and pills; filled from the state (the kit page may have none and shows ids). */
const directory = {
  users: new Map(),
  channels: new Map(),
  botId: null,
  botName: 'warmline',
  me: null,
  sig: '',
  update(state, me = this.me) {
    this.users = new Map((state.users || []).map((u) => [u.id, u]));
    this.channels = new Map((state.channels || []).map((c) => [c.id, c]));
    if (state.bot) {
      this.botId = state.bot.user_id || this.botId;
      this.botName = state.bot.name || this.botName;
    }
    this.me = me;
    this.sig = JSON.stringify([state.users || [], state.channels || [], this.botId, this.botName, this.me]);
  },
  userName(id) {
    if (id && id === this.botId) return this.botName;
    const user = this.users.get(id);
    return user ? user.name : id || 'unknown';
  },
  /** Changes when any name a render depends on changes (part of every render's cache key). */
  signature() {
    return this.sig;
  },
};

const decodeEntities = (text) => text.replace(/&(lt|gt|amp);/g, (_, e) => ({ lt: '<', gt: '>', amp: '&' })[e]);

/** Renders mrkdwn into a fragment: ``` blocks, > quotes, then inline markup line by line. */
function mrkdwn(source) {
  const fragment = document.createDocumentFragment();
  const text = String(source ?? '');
  const fence = /```([\s\S]*?)```/g;
  let last = 0;
  for (const match of text.matchAll(fence)) {
    mrkdwnLines(text.slice(last, match.index), fragment);
    // Slack drops the newline right after the opening fence.
    fragment.append(h('pre', { class: 'mk-pre' }, decodeEntities(match[1].replace(/^\n/, ''))));
    last = match.index + match[0].length;
  }
  mrkdwnLines(text.slice(last), fragment);
  return fragment;
}

/** Lines outside ``` blocks: consecutive quoted lines become one blockquote; others keep their newlines. */
function mrkdwnLines(text, parent) {
  if (!text || text === '\n') return;
  // Newlines that only separate text from a block element (pre/quote) would render as blank lines.
  const lines = text.replace(/^\n/, '').replace(/\n$/, '').split('\n');
  let quote = null;
  let plain = null;
  lines.forEach((line) => {
    const quoted = /^(&gt;|>)/.exec(line);
    if (quoted) {
      plain = null;
      if (!quote) {
        quote = h('blockquote', { class: 'mk-quote' });
        parent.append(quote);
      } else {
        quote.append('\n');
      }
      inlineMarkup(line.slice(quoted[0].length).replace(/^ /, ''), quote);
    } else {
      quote = null;
      if (!plain) {
        plain = h('span', { class: 'mk-text' });
        parent.append(plain);
      } else {
        plain.append('\n');
      }
      inlineMarkup(line, plain);
    }
  });
}

/** True where a *, _ or ~ may open or close: the edge of the text or a non-alphanumeric neighbour. */
const isBoundary = (ch) => ch === undefined || !/[\p{L}\p{N}]/u.test(ch);
const STYLE_TAGS = { '*': ['b', 'mk-bold'], _: ['i', 'mk-italic'], '~': ['s', 'mk-strike'] };

/** Inline markup of one line: `code`, <links|mentions>, *bold*, _italic_, ~strike~, :emoji:. */
function inlineMarkup(line, parent) {
  let buffer = '';
  const flush = () => {
    if (buffer) parent.append(decodeEntities(buffer));
    buffer = '';
  };
  for (let i = 0; i < line.length; ) {
    const ch = line[i];
    if (ch === '`') {
      const end = line.indexOf('`', i + 1);
      if (end > i + 1) {
        flush();
        parent.append(h('code', { class: 'mk-code' }, decodeEntities(line.slice(i + 1, end))));
        i = end + 1;
        continue;
      }
    } else if (ch === '<') {
      const end = line.indexOf('>', i + 1);
      if (end > i + 1) {
        flush();
        parent.append(angleToken(line.slice(i + 1, end)));
        i = end + 1;
        continue;
      }
    } else if (STYLE_TAGS[ch]) {
      const next = line[i + 1];
      if (isBoundary(line[i - 1]) && next !== undefined && !/\s/.test(next) && next !== ch) {
        const end = findCloser(line, ch, i + 1);
        if (end > 0) {
          flush();
          const [tag, cls] = STYLE_TAGS[ch];
          const node = h(tag, { class: cls });
          inlineMarkup(line.slice(i + 1, end), node);
          parent.append(node);
          i = end + 1;
          continue;
        }
      }
    } else if (ch === ':') {
      const match = /^:([a-z0-9_+'-]+):/.exec(line.slice(i));
      if (match && EMOJI[match[1]]) {
        flush();
        parent.append(emojiNode(match[1]));
        i += match[0].length;
        continue;
      }
    }
    buffer += ch;
    i += 1;
  }
  flush();
}

/** The closing marker of a style: not after a space, followed by a boundary; code and <…> are skipped over. */
function findCloser(line, marker, from) {
  for (let j = from + 1; j < line.length; j++) {
    const ch = line[j];
    if (ch === '`' || ch === '<') {
      const end = line.indexOf(ch === '`' ? '`' : '>', j + 1);
      if (end > 0) j = end;
      continue;
    }
    if (ch === marker && !/\s/.test(line[j - 1]) && isBoundary(line[j + 1])) return j;
  }
  return -1;
}

/** `<…>`: user and channel mentions, special mentions, dates, links. */
function angleToken(inner) {
  const bar = inner.indexOf('|');
  const target = bar >= 0 ? inner.slice(0, bar) : inner;
  const label = bar >= 0 ? decodeEntities(inner.slice(bar + 1)) : null;
  if (target.startsWith('@')) return userPill(target.slice(1), label);
  if (target.startsWith('#')) return channelPill(target.slice(1), label);
  if (target.startsWith('!')) return specialMention(target.slice(1), label);
  const url = safeUrl(decodeEntities(target));
  const labelNode = h('span');
  inlineMarkup(label ?? target, labelNode); // a label may carry *bold* or :emoji:, like in Slack
  if (!url) return labelNode; // javascript: and friends stay inert text
  return h('a', { class: 'mk-link', href: url, target: '_blank', rel: 'noopener noreferrer' }, labelNode);
}

function userPill(id, label) {
  const known = id === directory.botId || directory.users.has(id);
  const name = known ? directory.userName(id) : label ? label.replace(/^@/, '') : id;
  const classes = ['mk-mention', 'mk-user'];
  if (id === directory.me) classes.push('mk-me');
  return h('span', { class: classes.join(' '), dataset: { userId: id } }, `@${name}`);
}

function channelPill(id, label) {
  const channel = directory.channels.get(id);
  const name = channel ? channel.name : label || id;
  if (channel) {
    return h('a', { class: 'mk-mention mk-channel', href: `#channel=${encodeURIComponent(id)}`, dataset: { channelId: id } }, `#${name}`);
  }
  return h('span', { class: 'mk-mention mk-channel', dataset: { channelId: id } }, `#${name}`);
}

function specialMention(target, label) {
  const [kind, ...rest] = target.split('^');
  if (kind === 'here' || kind === 'channel' || kind === 'everyone') {
    return h('span', { class: 'mk-mention mk-broadcast' }, `@${kind}`);
  }
  if (kind === 'subteam') {
    return h('span', { class: 'mk-mention mk-group' }, label || `@${rest[0] || 'group'}`);
  }
  if (kind === 'date') {
    // Slack formats the date in the reader's locale; the fallback is what the bot wrote for old clients.
    if (label) return h('span', { class: 'mk-date' }, label);
    const date = new Date(Number(rest[0]) * 1000);
    return h('span', { class: 'mk-date' }, Number.isNaN(date.getTime()) ? target : formatDateTime(date));
  }
  return h('span', {}, label || `<!${target}>`);
}

/* ============================================================================================================
 * 4. Block Kit renderer. Used for messages, the Home, modals and the kit gallery. Blocks and elements render the
 *    way Slack draws them; anything unknown renders as a visible grey placeholder and is recorded (kit mode
 *    reports the list). Interactive elements carry data-action-id and data-block-id (buttons also data-value).
 *
 *    State model: every surface owns a `values` object in Slack's state.values format (block_id → action_id →
 *    {type, value | selected_option | …}). An element's DOM is drawn from it and writes back to it, so a view
 *    that keeps its `values` across re-renders keeps what the user typed, and a submission is just `values`.
 * ========================================================================================================== */

/** Everything the renderer could not draw, as "block:x" / "element:x" / "text:x" (kit mode prints it). */
const unsupported = new Set();
/** While the kit renders one layout, the unsupported entries of that layout alone. */
let unsupportedCollector = null;

function unsupportedNode(kind, type, inline = false) {
  const name = `${kind}:${type}`;
  unsupported.add(name);
  if (unsupportedCollector) unsupportedCollector.add(name);
  return h(inline ? 'span' : 'div', { class: 'bk-unsupported', dataset: { unsupported: name } }, `[unsupported ${kind}: ${type}]`);
}

/**
 * One rendered Block Kit surface.
 *  kind: 'message' (every change is an action at once) or 'view' (Home and modals: an element inside an `input`
 *        block only changes local state unless its block has dispatch_action).
 *  container: the contract's action container ({type:'message',channel,ts} or {type:'view',view_id}).
 *  values: Slack's state.values for this surface (kept by the caller across re-renders for views).
 *  send(surface, action, sourceNode): what a dispatched action does (POST in the workspace, a toast in the kit).
 *  onEdit(blockId): a value changed locally (the modal clears that block's error, as Slack does).
 */
class Surface {
  constructor({ kind, container = null, values = {}, send, onEdit = () => {} }) {
    this.kind = kind;
    this.container = container;
    this.values = values;
    this.send = send;
    this.onEdit = onEdit;
  }

  dispatch(action, sourceNode) {
    return this.send(this, action, sourceNode);
  }
}

/** Elements that hold a value (and so appear in state.values); buttons, overflows and images do not. */
const STATEFUL = new Set([
  'plain_text_input', 'email_text_input', 'url_text_input', 'number_input', 'rich_text_input',
  'static_select', 'external_select', 'users_select', 'conversations_select', 'channels_select',
  'multi_static_select', 'multi_external_select', 'multi_users_select', 'multi_conversations_select',
  'multi_channels_select', 'radio_buttons', 'checkboxes', 'datepicker', 'timepicker', 'datetimepicker',
]);

/* ---- text objects ------------------------------------------------------------------------------------------ */

/** A text object as a node: mrkdwn rendered, plain_text with emoji unless `emoji: false`. */
function textObject(text, className = '') {
  if (text === undefined || text === null) return document.createTextNode('');
  if (typeof text === 'string') return h('span', { class: `bk-text ${className}`.trim() }, text);
  if (text.type === 'mrkdwn') return h('span', { class: `bk-text bk-mrkdwn ${className}`.trim() }, mrkdwn(text.text));
  if (text.type === 'plain_text') {
    return h('span', { class: `bk-text bk-plain ${className}`.trim() }, text.emoji === false ? String(text.text ?? '') : emojify(text.text ?? ''));
  }
  return unsupportedNode('text', text.type || 'missing type', true);
}

/** A text object as a string, for places that take no markup (option labels, placeholders, attributes). */
function textString(text) {
  if (text === undefined || text === null) return '';
  if (typeof text === 'string') return text;
  if (text.type === 'plain_text') return text.emoji === false ? String(text.text ?? '') : emojifyString(text.text ?? '');
  if (text.type === 'mrkdwn') return decodeEntities(String(text.text ?? ''));
  unsupportedNode('text', text.type || 'missing type', true);
  return '';
}

/* ---- blocks ------------------------------------------------------------------------------------------------ */

function renderBlocks(blocks, surface) {
  const root = h('div', { class: 'bk-blocks' });
  (Array.isArray(blocks) ? blocks : []).forEach((block, index) => root.append(renderBlock(block, index, surface)));
  return root;
}

function renderBlock(block, index, surface) {
  // Slack gives every block an id; a missing one is the block's index (contract: "b<index>").
  const blockId = block && block.block_id ? String(block.block_id) : `b${index}`;
  const type = block && block.type;
  const render = BLOCKS[type];
  const node = render ? render(block, { surface, blockId }) : unsupportedNode('block', type || 'missing type');
  node.classList.add('block');
  node.dataset.blockId = blockId;
  if (type) node.dataset.blockType = type;
  return node;
}

const BLOCKS = {
  section(block, ctx) {
    const main = h('div', { class: 'bk-section-main' });
    if (block.text) main.append(h('div', { class: 'bk-section-text' }, textObject(block.text)));
    if (Array.isArray(block.fields) && block.fields.length) {
      main.append(h('div', { class: 'bk-fields' }, block.fields.map((f) => h('div', { class: 'bk-field' }, textObject(f)))));
    }
    const node = h('div', { class: 'bk-section' }, main);
    if (block.accessory) {
      const accessory = renderElement(block.accessory, { ...ctx, where: 'accessory', index: 0 });
      node.append(h('div', { class: `bk-accessory bk-accessory-${block.accessory.type}` }, accessory));
    }
    return node;
  },

  context(block, ctx) {
    return h('div', { class: 'bk-context' }, (block.elements || []).map((element) => {
      if (element && element.type === 'image') return imageNode(element, 'bk-context-image');
      if (element && (element.type === 'mrkdwn' || element.type === 'plain_text')) {
        return h('span', { class: 'bk-context-text' }, textObject(element));
      }
      return unsupportedNode('element', (element && element.type) || 'missing type', true);
    }));
  },

  image(block) {
    return h('figure', { class: 'bk-image-block' },
      block.title && h('figcaption', { class: 'bk-image-title' }, textObject(block.title)),
      imageNode(block, 'bk-image'));
  },

  header(block) {
    return h('h3', { class: 'bk-header' }, textObject(block.text));
  },

  divider() {
    return h('hr', { class: 'bk-divider' });
  },

  actions(block, ctx) {
    return h('div', { class: 'bk-actions' },
      (block.elements || []).map((element, index) => renderElement(element, { ...ctx, where: 'actions', index })));
  },

  input(block, ctx) {
    const element = block.element || {};
    const control = renderElement(element, { ...ctx, where: 'input', index: 0, dispatchAction: block.dispatch_action === true });
    // The label points at the control itself (a select sits in a wrapper), so clicking it focuses the control.
    const controlId = uid('input-');
    const focusable = /^(INPUT|SELECT|TEXTAREA)$/.test(control.tagName) ? control
      : control.classList.contains('bk-select-wrap') ? control.firstElementChild : null;
    if (focusable) focusable.id = controlId;
    return h('div', { class: 'bk-input' },
      h('label', { class: 'bk-input-label', for: controlId },
        textObject(block.label),
        block.optional === true && h('span', { class: 'bk-optional' }, ' (optional)')),
      h('div', { class: 'bk-input-element' }, control),
      block.hint && h('div', { class: 'bk-hint' }, textObject(block.hint)));
  },

  rich_text(block) {
    return h('div', { class: 'bk-rich-text' }, (block.elements || []).map(richTextPart));
  },

  file(block) {
    // The sandbox has no files; Slack would show the remote file's card.
    return h('div', { class: 'bk-file' },
      h('span', { class: 'bk-file-icon', 'aria-hidden': 'true' }, '📄'),
      h('span', { class: 'bk-file-name' }, 'file'),
      block.external_id && h('span', { class: 'bk-file-id' }, String(block.external_id)));
  },

  video(block) {
    const link = safeUrl(block.title_url) || safeUrl(block.video_url);
    const thumb = safeUrl(block.thumbnail_url, { images: true });
    const title = textObject(block.title);
    return h('div', { class: 'bk-video' },
      h('div', { class: 'bk-video-thumb' },
        thumb && h('img', { src: thumb, alt: block.alt_text || '', loading: 'lazy', referrerpolicy: 'no-referrer' }),
        h('span', { class: 'bk-video-play', 'aria-hidden': 'true' }, '▶')),
      h('div', { class: 'bk-video-info' },
        link ? h('a', { class: 'bk-video-title', href: link, target: '_blank', rel: 'noopener noreferrer' }, title)
          : h('span', { class: 'bk-video-title' }, title),
        block.description && h('div', { class: 'bk-video-description' }, textObject(block.description)),
        (block.author_name || block.provider_name) &&
          h('div', { class: 'bk-video-provider' }, [block.author_name, block.provider_name].filter(Boolean).join(' · '))));
  },
};

function imageNode(image, className) {
  const src = safeUrl(image.image_url || (image.slack_file && image.slack_file.url), { images: true });
  if (!src) return h('span', { class: `${className} bk-image-missing`, title: image.alt_text || '' }, '🖼');
  return h('img', { class: className, src, alt: image.alt_text || '', title: image.alt_text || '', loading: 'lazy', referrerpolicy: 'no-referrer' });
}

/* ---- rich_text --------------------------------------------------------------------------------------------- */

function richTextPart(part) {
  switch (part && part.type) {
    case 'rich_text_section':
      return h('div', { class: 'rt-section' }, richTextInline(part.elements));
    case 'rich_text_list': {
      const ordered = part.style === 'ordered';
      return h(ordered ? 'ol' : 'ul', {
        class: `rt-list rt-indent-${Number(part.indent) || 0}`,
        start: ordered && part.offset ? Number(part.offset) + 1 : null,
      }, (part.elements || []).map((item) => h('li', {}, item && item.type === 'rich_text_section'
        ? richTextInline(item.elements) : richTextPart(item))));
    }
    case 'rich_text_quote':
      return h('blockquote', { class: 'rt-quote' }, richTextInline(part.elements));
    case 'rich_text_preformatted':
      return h('pre', { class: 'rt-pre' }, richTextInline(part.elements));
    default:
      return unsupportedNode('element', (part && part.type) || 'missing type');
  }
}

function richTextInline(elements) {
  return (elements || []).map((element) => {
    const style = element.style || {};
    let node;
    switch (element.type) {
      case 'text':
        node = document.createTextNode(String(element.text ?? ''));
        break;
      case 'link': {
        const url = safeUrl(element.url);
        const label = String(element.text || element.url || '');
        node = url ? h('a', { class: 'mk-link', href: url, target: '_blank', rel: 'noopener noreferrer' }, label) : h('span', {}, label);
        break;
      }
      case 'user':
        node = userPill(element.user_id, null);
        break;
      case 'channel':
        node = channelPill(element.channel_id, null);
        break;
      case 'usergroup':
        node = h('span', { class: 'mk-mention mk-group' }, `@${element.usergroup_id}`);
        break;
      case 'broadcast':
        node = h('span', { class: 'mk-mention mk-broadcast' }, `@${element.range}`);
        break;
      case 'emoji':
        node = richTextEmoji(element);
        break;
      case 'date':
        node = h('span', { class: 'mk-date' }, element.fallback || formatDateTime(new Date(Number(element.timestamp) * 1000)));
        break;
      case 'color':
        node = h('span', { class: 'rt-color' }, h('span', { class: 'rt-swatch', style: `background:${/^#[0-9a-f]{3,8}$/i.test(element.value) ? element.value : 'transparent'}` }), String(element.value));
        break;
      default:
        return unsupportedNode('element', element.type || 'missing type', true);
    }
    return applyRichStyle(node, style);
  });
}

function richTextEmoji(element) {
  if (EMOJI[element.name]) return emojiNode(element.name);
  if (typeof element.unicode === 'string' && /^[0-9a-f]+(-[0-9a-f]+)*$/i.test(element.unicode)) {
    const chars = String.fromCodePoint(...element.unicode.split('-').map((hex) => Number.parseInt(hex, 16)));
    return h('span', { class: 'emoji', title: `:${element.name}:` }, chars);
  }
  return document.createTextNode(`:${element.name}:`);
}

function applyRichStyle(node, style) {
  let result = node;
  if (style.code) result = h('code', { class: 'mk-code' }, result);
  if (style.strike) result = h('s', { class: 'mk-strike' }, result);
  if (style.italic) result = h('i', { class: 'mk-italic' }, result);
  if (style.bold) result = h('b', { class: 'mk-bold' }, result);
  if (style.underline) result = h('u', {}, result);
  return result;
}

/* ---- elements: value model --------------------------------------------------------------------------------- */

function actionIdOf(element, ctx) {
  // Slack generates an action_id when the layout has none; a stable one keeps the local state addressable.
  return element.action_id ? String(element.action_id) : `${ctx.blockId}-a${ctx.index || 0}`;
}

function idData(element, ctx, extra = {}) {
  return { actionId: actionIdOf(element, ctx), blockId: ctx.blockId, type: element.type, ...extra };
}

/** Every option of a select (option_groups flattened). */
function optionsOf(element) {
  if (Array.isArray(element.options)) return element.options;
  if (Array.isArray(element.option_groups)) return element.option_groups.flatMap((g) => g.options || []);
  return [];
}

/** An option as Slack puts it in a payload: text and value (and description when there is one). */
function optionPayload(option) {
  if (!option) return null;
  const payload = { text: clone(option.text), value: option.value };
  if (option.description) payload.description = clone(option.description);
  return payload;
}

/** Slack matches initial options to the element's options by value. */
function matchOption(element, option) {
  if (!option) return null;
  const found = optionsOf(element).find((o) => o.value === option.value);
  return optionPayload(found || option);
}

/** The Slack state.values entry an element starts with, from its initial_* fields. */
function initialState(element) {
  const type = element.type;
  switch (type) {
    case 'plain_text_input':
    case 'email_text_input':
    case 'url_text_input':
    case 'number_input':
      return { type, value: element.initial_value === undefined || element.initial_value === '' ? null : String(element.initial_value) };
    case 'rich_text_input':
      return { type, rich_text_value: element.initial_value ? clone(element.initial_value) : null };
    case 'static_select':
    case 'external_select':
    case 'radio_buttons':
      return { type, selected_option: matchOption(element, element.initial_option) };
    case 'multi_static_select':
    case 'multi_external_select':
    case 'checkboxes':
      return { type, selected_options: (element.initial_options || []).map((o) => matchOption(element, o)) };
    case 'users_select':
      return { type, selected_user: element.initial_user || null };
    case 'multi_users_select':
      return { type, selected_users: [...(element.initial_users || [])] };
    case 'conversations_select':
      return { type, selected_conversation: element.initial_conversation || null };
    case 'multi_conversations_select':
      return { type, selected_conversations: [...(element.initial_conversations || [])] };
    case 'channels_select':
      return { type, selected_channel: element.initial_channel || null };
    case 'multi_channels_select':
      return { type, selected_channels: [...(element.initial_channels || [])] };
    case 'datepicker':
      return { type, selected_date: element.initial_date || null };
    case 'timepicker':
      return { type, selected_time: element.initial_time || null };
    case 'datetimepicker':
      return { type, selected_date_time: Number.isFinite(element.initial_date_time) ? element.initial_date_time : null };
    default:
      return { type };
  }
}

/** The element's current entry in the surface's values, created from its initial_* on first sight. */
function stateOf(element, ctx) {
  const values = ctx.surface.values;
  const actionId = actionIdOf(element, ctx);
  if (!values[ctx.blockId]) values[ctx.blockId] = {};
  if (!values[ctx.blockId][actionId]) values[ctx.blockId][actionId] = initialState(element);
  return values[ctx.blockId][actionId];
}

/** Whether a change of this element is an action now (else it only changes local state, like in Slack). */
function dispatches(ctx) {
  return ctx.where !== 'input' || ctx.dispatchAction === true || ctx.surface.kind === 'message';
}

/**
 * A user changed an element: ask the element's confirm (only when the change is an action), store the new
 * value, then send the action (Slack's block_actions `actions[0]`: type, action_id, block_id, the value fields).
 * Resolves once stored or refused, so the caller can redraw the control from the stored value either way.
 */
async function commitChange(element, ctx, fields, sourceNode) {
  const send = dispatches(ctx);
  if (send && element.confirm && !(await confirmDialog(element.confirm))) return false;
  if (STATEFUL.has(element.type)) {
    stateOf(element, ctx);
    ctx.surface.values[ctx.blockId][actionIdOf(element, ctx)] = { type: element.type, ...clone(fields) };
  }
  ctx.surface.onEdit(ctx.blockId);
  if (send) {
    ctx.surface.dispatch({ type: element.type, action_id: actionIdOf(element, ctx), block_id: ctx.blockId, ...clone(fields) }, sourceNode);
  }
  return true;
}

function renderElement(element, ctx) {
  const render = element && ELEMENTS[element.type];
  if (!render) return unsupportedNode('element', (element && element.type) || 'missing type', true);
  return render(element, ctx);
}

const placeholderOf = (element, fallback) => textString(element.placeholder) || fallback;
const styleClass = (style) => (style === 'primary' ? 'primary' : style === 'danger' ? 'danger' : '');

/* ---- elements: drawing ------------------------------------------------------------------------------------- */

const ELEMENTS = {
  button(element, ctx) {
    const url = safeUrl(element.url);
    const button = h('button', {
      type: 'button',
      class: `bk-button ${styleClass(element.style)}`.trim(),
      dataset: idData(element, ctx, { value: element.value, url: url || undefined }),
      'aria-label': element.accessibility_label,
    }, textObject(element.text), url && h('span', { class: 'bk-button-external', 'aria-hidden': 'true' }, ' ↗'));
    button.addEventListener('click', async () => {
      if (element.confirm && !(await confirmDialog(element.confirm))) return;
      // Slack opens a link button's URL and still sends block_actions for it.
      if (url) window.open(url, '_blank', 'noopener,noreferrer');
      const action = { type: 'button', action_id: actionIdOf(element, ctx), block_id: ctx.blockId };
      if (element.value !== undefined) action.value = element.value;
      ctx.surface.dispatch(action, button);
    });
    return button;
  },

  static_select(element, ctx) {
    const groups = Array.isArray(element.option_groups)
      ? element.option_groups.map((g) => ({ label: textString(g.label), options: g.options || [] }))
      : [{ label: null, options: element.options || [] }];
    return singleSelect(element, ctx, {
      groups: groups.map((g) => ({ label: g.label, choices: g.options.map((o) => ({ key: o.value, label: textString(o.text) })) })),
      field: 'selected_option',
      keyOf: (state) => state.selected_option && state.selected_option.value,
      fromKey: (key) => optionPayload(optionsOf(element).find((o) => o.value === key) ||
        (element.initial_option && element.initial_option.value === key ? element.initial_option : null)),
      fallbackLabel: (state) => state.selected_option && textString(state.selected_option.text),
      placeholder: 'Select an item',
    });
  },

  external_select(element, ctx) {
    // No options endpoint in the sandbox: the initial option is the only choice (the kit and the contract agree).
    const options = element.initial_option ? [element.initial_option] : [];
    return singleSelect(element, ctx, {
      groups: [{ label: null, choices: options.map((o) => ({ key: o.value, label: textString(o.text) })) }],
      field: 'selected_option',
      keyOf: (state) => state.selected_option && state.selected_option.value,
      fromKey: (key) => optionPayload(options.find((o) => o.value === key)),
      placeholder: 'Search…',
    });
  },

  users_select(element, ctx) {
    return singleSelect(element, ctx, {
      groups: [{ label: null, choices: userChoices() }],
      field: 'selected_user',
      keyOf: (state) => state.selected_user,
      fromKey: (key) => key || null,
      placeholder: 'Select a user',
    });
  },

  conversations_select(element, ctx) {
    return singleSelect(element, ctx, {
      groups: [{ label: null, choices: channelChoices(true) }],
      field: 'selected_conversation',
      keyOf: (state) => state.selected_conversation,
      fromKey: (key) => key || null,
      placeholder: 'Select a conversation',
    });
  },

  channels_select(element, ctx) {
    return singleSelect(element, ctx, {
      groups: [{ label: null, choices: channelChoices(false) }],
      field: 'selected_channel',
      keyOf: (state) => state.selected_channel,
      fromKey: (key) => key || null,
      placeholder: 'Select a channel',
    });
  },

  multi_static_select(element, ctx) {
    return multiSelect(element, ctx, {
      choices: optionsOf(element).map((o) => ({ key: o.value, label: textString(o.text) })),
      field: 'selected_options',
      keysOf: (state) => (state.selected_options || []).map((o) => o.value),
      fromKeys: (keys) => keys.map((k) => optionPayload(optionsOf(element).find((o) => o.value === k))).filter(Boolean),
      placeholder: 'Select items',
    });
  },

  multi_external_select(element, ctx) {
    const options = element.initial_options || [];
    return multiSelect(element, ctx, {
      choices: options.map((o) => ({ key: o.value, label: textString(o.text) })),
      field: 'selected_options',
      keysOf: (state) => (state.selected_options || []).map((o) => o.value),
      fromKeys: (keys) => keys.map((k) => optionPayload(options.find((o) => o.value === k))).filter(Boolean),
      placeholder: 'Search…',
    });
  },

  multi_users_select(element, ctx) {
    return multiSelect(element, ctx, {
      choices: userChoices(),
      field: 'selected_users',
      keysOf: (state) => state.selected_users || [],
      fromKeys: (keys) => keys,
      placeholder: 'Select users',
    });
  },

  multi_conversations_select(element, ctx) {
    return multiSelect(element, ctx, {
      choices: channelChoices(true),
      field: 'selected_conversations',
      keysOf: (state) => state.selected_conversations || [],
      fromKeys: (keys) => keys,
      placeholder: 'Select conversations',
    });
  },

  multi_channels_select(element, ctx) {
    return multiSelect(element, ctx, {
      choices: channelChoices(false),
      field: 'selected_channels',
      keysOf: (state) => state.selected_channels || [],
      fromKeys: (keys) => keys,
      placeholder: 'Select channels',
    });
  },

  overflow(element, ctx) {
    const options = element.options || [];
    const menu = h('div', { class: 'bk-overflow-menu', role: 'menu', hidden: true });
    const toggle = h('button', { type: 'button', class: 'bk-overflow-button', 'aria-haspopup': 'menu', 'aria-label': 'More actions' }, '⋯');
    const node = h('div', { class: 'bk-overflow', dataset: idData(element, ctx) }, toggle, menu);
    options.forEach((option) => {
      menu.append(h('button', {
        type: 'button',
        class: 'bk-overflow-option',
        role: 'menuitem',
        dataset: { value: option.value },
        onclick: () => {
          menu.hidden = true;
          const url = safeUrl(option.url);
          if (url) window.open(url, '_blank', 'noopener,noreferrer');
          commitChange(element, ctx, { selected_option: optionPayload(option) }, toggle);
        },
      }, textString(option.text)));
    });
    toggle.addEventListener('click', (event) => {
      event.stopPropagation(); // the document-level handler closes every other open menu
      const open = menu.hidden;
      closeOverflowMenus();
      menu.hidden = !open;
    });
    return node;
  },

  radio_buttons(element, ctx) {
    return choiceGroup(element, ctx, 'radio');
  },

  checkboxes(element, ctx) {
    return choiceGroup(element, ctx, 'checkbox');
  },

  datepicker(element, ctx) {
    return pickerInput(element, ctx, 'date', 'selected_date', (v) => v || null, (v) => v || '');
  },

  timepicker(element, ctx) {
    return pickerInput(element, ctx, 'time', 'selected_time', (v) => v || null, (v) => v || '');
  },

  datetimepicker(element, ctx) {
    // Slack's value is unix seconds; the control shows the reader's local time, as Slack does.
    const toValue = (v) => (v ? Math.floor(new Date(v).getTime() / 1000) : null);
    const toControl = (seconds) => {
      if (!Number.isFinite(seconds)) return '';
      const d = new Date(seconds * 1000);
      return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
    };
    return pickerInput(element, ctx, 'datetime-local', 'selected_date_time', toValue, toControl);
  },

  plain_text_input(element, ctx) {
    return textInput(element, ctx, 'text');
  },

  email_text_input(element, ctx) {
    return textInput(element, ctx, 'email');
  },

  url_text_input(element, ctx) {
    return textInput(element, ctx, 'url');
  },

  number_input(element, ctx) {
    return textInput(element, ctx, 'number');
  },

  rich_text_input(element, ctx) {
    // Drawn as a plain textarea; its value is the one-section rich_text Slack would send for plain typing.
    const state = stateOf(element, ctx);
    const initial = state.rich_text_value ? richTextToString(state.rich_text_value) : '';
    const area = h('textarea', { class: 'bk-text-input', rows: 3, dataset: idData(element, ctx), placeholder: placeholderOf(element, ''), value: initial });
    area.addEventListener('input', () => {
      const text = area.value;
      const value = text ? { type: 'rich_text', elements: [{ type: 'rich_text_section', elements: [{ type: 'text', text }] }] } : null;
      stateOf(element, ctx).rich_text_value = value;
      ctx.surface.onEdit(ctx.blockId);
    });
    return area;
  },

  image(element) {
    return imageNode(element, 'bk-image-element');
  },
};

function richTextToString(value) {
  const walk = (node) => (node.type === 'text' ? node.text || '' : (node.elements || []).map(walk).join(''));
  return walk(value);
}

function userChoices() {
  return [...directory.users.values()].map((u) => ({ key: u.id, label: u.name }));
}

function channelChoices(includeIms) {
  return [...directory.channels.values()]
    .filter((c) => includeIms || !c.is_im)
    .map((c) => ({ key: c.id, label: c.is_im ? c.name : `# ${c.name}` }));
}

/** A native <select> (keeps keyboard use and test drivers simple), drawn from and writing to the state. */
function singleSelect(element, ctx, spec) {
  const state = stateOf(element, ctx);
  const select = h('select', { class: 'bk-select', dataset: idData(element, ctx) });
  const placeholder = h('option', { value: '', disabled: true, hidden: true }, placeholderOf(element, spec.placeholder));
  select.append(placeholder);
  const known = new Set();
  for (const group of spec.groups) {
    const options = group.choices.map((c) => {
      known.add(c.key);
      return h('option', { value: c.key }, c.label);
    });
    if (group.label) select.append(h('optgroup', { label: group.label }, options));
    else select.append(...options);
  }
  // An initial value the lists do not know (a user from another workspace, a kit page without state) still shows.
  const current = spec.keyOf(state);
  if (current && !known.has(current)) {
    const label = (spec.fallbackLabel && spec.fallbackLabel(state)) || current;
    select.append(h('option', { value: current }, label));
  }
  const sync = () => {
    const key = spec.keyOf(stateOf(element, ctx));
    select.value = key || '';
    select.classList.toggle('is-empty', !key);
  };
  select.addEventListener('change', () => {
    commitChange(element, ctx, { [spec.field]: spec.fromKey(select.value) }, select).then(sync);
  });
  sync();
  return h('span', { class: 'bk-select-wrap' }, select);
}

/** Chips for the chosen items and a select to add one more (Slack's multi select, without a search box). */
function multiSelect(element, ctx, spec) {
  const node = h('div', { class: 'bk-multi', dataset: idData(element, ctx) });
  const labelOf = (key) => (spec.choices.find((c) => c.key === key) || { label: key }).label;
  const change = (keys, source) => commitChange(element, ctx, { [spec.field]: spec.fromKeys(keys) }, source).then(draw);
  function draw() {
    const keys = spec.keysOf(stateOf(element, ctx));
    const chips = keys.map((key) => h('span', { class: 'bk-chip', dataset: { value: key } }, labelOf(key),
      h('button', { type: 'button', class: 'bk-chip-remove', 'aria-label': `Remove ${labelOf(key)}`, onclick: (e) => change(keys.filter((k) => k !== key), e.currentTarget) }, '×')));
    const remaining = spec.choices.filter((c) => !keys.includes(c.key));
    const full = Number.isFinite(element.max_selected_items) && keys.length >= element.max_selected_items;
    const add = h('select', { class: 'bk-multi-add', 'aria-label': placeholderOf(element, spec.placeholder), disabled: full || !remaining.length },
      h('option', { value: '', disabled: true, hidden: true, selected: true }, keys.length ? 'Add…' : placeholderOf(element, spec.placeholder)),
      remaining.map((c) => h('option', { value: c.key }, c.label)));
    add.addEventListener('change', () => change([...keys, add.value], add));
    node.replaceChildren(...chips, add);
  }
  draw();
  return node;
}

/** Radio buttons and checkboxes: a group carrying the ids, one native input per option (value = option value). */
function choiceGroup(element, ctx, kind) {
  const options = element.options || [];
  const name = uid('choice-');
  const node = h('div', { class: `bk-choices bk-${kind === 'radio' ? 'radio-buttons' : 'checkboxes'}`, role: kind === 'radio' ? 'radiogroup' : 'group', dataset: idData(element, ctx) });
  const inputs = options.map((option) => h('input', { type: kind, name, value: option.value }));
  options.forEach((option, i) => {
    node.append(h('label', { class: 'bk-choice' }, inputs[i],
      h('span', { class: 'bk-choice-text' }, textObject(option.text),
        option.description && h('span', { class: 'bk-choice-description' }, textObject(option.description)))));
  });
  const sync = () => {
    const state = stateOf(element, ctx);
    const chosen = kind === 'radio'
      ? [state.selected_option && state.selected_option.value]
      : (state.selected_options || []).map((o) => o.value);
    inputs.forEach((input) => { input.checked = chosen.includes(input.value); });
  };
  node.addEventListener('change', (event) => {
    const fields = kind === 'radio'
      ? { selected_option: optionPayload(options[inputs.indexOf(event.target)]) }
      : { selected_options: options.filter((_, i) => inputs[i].checked).map(optionPayload) };
    commitChange(element, ctx, fields, event.target).then(sync);
  });
  sync();
  return node;
}

/** Date, time and date-time pickers: native inputs, value converted to Slack's format. */
function pickerInput(element, ctx, inputType, field, toValue, toControl) {
  const input = h('input', { type: inputType, class: 'bk-picker', dataset: idData(element, ctx), 'aria-label': placeholderOf(element, '') || null });
  const sync = () => { input.value = toControl(stateOf(element, ctx)[field]); };
  input.addEventListener('change', () => {
    commitChange(element, ctx, { [field]: toValue(input.value) }, input).then(sync);
  });
  sync();
  return input;
}

/**
 * Text, email, url and number inputs. Typing only changes local state; a dispatching input sends its action on
 * Enter (or on each character with trigger_actions_on: on_character_entered), like Slack's dispatch_action_config.
 */
function textInput(element, ctx, inputType) {
  const state = stateOf(element, ctx);
  const multiline = element.type === 'plain_text_input' && element.multiline === true;
  const props = {
    class: 'bk-text-input',
    dataset: idData(element, ctx),
    placeholder: placeholderOf(element, ''),
    maxlength: element.max_length,
    minlength: element.min_length,
    value: state.value ?? '',
  };
  let input;
  if (multiline) input = h('textarea', { ...props, rows: 4 });
  else if (inputType === 'number') {
    input = h('input', { ...props, type: 'number', step: element.is_decimal_allowed ? 'any' : '1', min: element.min_value, max: element.max_value });
  } else input = h('input', { ...props, type: inputType });
  if (element.focus_on_load) input.dataset.focusOnLoad = '1';

  const triggers = (element.dispatch_action_config && element.dispatch_action_config.trigger_actions_on) || ['on_enter_pressed'];
  const value = () => (input.value === '' ? null : input.value);
  const store = () => {
    stateOf(element, ctx).value = value();
    ctx.surface.onEdit(ctx.blockId);
  };
  let timer = null;
  input.addEventListener('input', () => {
    store();
    if (dispatches(ctx) && triggers.includes('on_character_entered')) {
      clearTimeout(timer); // one action per pause in typing, not one per key
      timer = setTimeout(() => commitChange(element, ctx, { value: value() }, null), 400);
    }
  });
  input.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || event.isComposing) return;
    if (multiline && !(event.ctrlKey || event.metaKey)) return;
    if (dispatches(ctx) && triggers.includes('on_enter_pressed')) {
      event.preventDefault();
      commitChange(element, ctx, { value: value() }, input);
    }
  });
  return input;
}

function closeOverflowMenus() {
  $$('.bk-overflow-menu').forEach((menu) => { menu.hidden = true; });
}

/* ---- validation Slack does in the client before a view_submission ----------------------------------------- */

const REQUIRED_MESSAGE = 'Please fill out this field.';

function isEmptyEntry(entry) {
  if (!entry) return true;
  for (const key of ['value', 'selected_option', 'selected_user', 'selected_conversation', 'selected_channel',
    'selected_date', 'selected_time', 'selected_date_time', 'rich_text_value']) {
    if (key in entry) return entry[key] === null || entry[key] === undefined || (typeof entry[key] === 'string' && entry[key].trim() === '');
  }
  for (const key of ['selected_options', 'selected_users', 'selected_conversations', 'selected_channels']) {
    if (key in entry) return !Array.isArray(entry[key]) || entry[key].length === 0;
  }
  return false;
}

/** Errors Slack shows itself: required inputs left empty, text shorter than min_length. {block_id: message}. */
function clientErrors(blocks, values) {
  const errors = {};
  (blocks || []).forEach((block, index) => {
    if (!block || block.type !== 'input' || !block.element) return;
    const blockId = block.block_id ? String(block.block_id) : `b${index}`;
    const actionId = actionIdOf(block.element, { blockId, index: 0 });
    const entry = values[blockId] && values[blockId][actionId];
    if (block.optional !== true && isEmptyEntry(entry)) errors[blockId] = REQUIRED_MESSAGE;
    else if (entry && typeof entry.value === 'string' && Number.isFinite(block.element.min_length) &&
      entry.value.length < block.element.min_length) {
      errors[blockId] = `Please use at least ${block.element.min_length} characters.`;
    }
  });
  return errors;
}

/**
 * Shows `errors` ({block_id: message}) under the matching blocks as .field-error[data-block-id]; an error for a
 * block the view does not have still shows, at the top (`general` is the node for that).
 */
function showFieldErrors(root, errors, general) {
  $$('.field-error', root).forEach((node) => node.remove());
  $$('.block.has-error', root).forEach((node) => node.classList.remove('has-error'));
  if (general) general.replaceChildren();
  for (const [blockId, message] of Object.entries(errors || {})) {
    if (!message) continue;
    const block = $$('.block', root).find((node) => node.dataset.blockId === blockId);
    const node = h('div', { class: 'field-error', role: 'alert', dataset: { blockId } }, String(message));
    if (block) {
      block.classList.add('has-error');
      block.append(node);
    } else if (general) general.append(node);
  }
  if (general) general.hidden = !general.childElementCount;
}

/* ============================================================================================================
 * 5. Server calls and toasts. Every answer is {ok:true,…} or {ok:false,error} (or an HTTP error); failures show
 *    in #toast.error, which stays in the DOM with its last text in data-last (browser tests read it).
 * ========================================================================================================== */

class ServerError extends Error {
  constructor(message, data = null, status = 0) {
    super(message);
    this.data = data;
    this.status = status;
  }
}

async function request(method, path, body, signal) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      signal,
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ServerError(`The sandbox server is not reachable (${error.message}).`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok || !data || data.ok === false) {
    const reason = data && data.error ? data.error : `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
    throw new ServerError(data && data.error ? reason : `${method} ${path} failed: ${reason}`, data, response.status);
  }
  return data;
}

/** A POSTed gesture: the answer, or null after showing why it failed. `onError(error)` sees the failure too. */
async function gesture(path, body, onError) {
  try {
    const answer = await request('POST', path, body);
    // The bot answered after Slack's 3 s: real Slack would have shown an error.
    if (answer && answer.warning) toast('info', answer.warning);
    return answer;
  } catch (error) {
    toast('error', error.message);
    if (onError) onError(error);
    return null;
  }
}

let toastTimer = null;

/** kind: 'error' or 'info'. The toast hides after a while but keeps its class and data-last. */
function toast(kind, message) {
  const node = $('#toast');
  if (!node) return;
  node.className = `${kind} visible`;
  node.textContent = message;
  node.dataset.last = message;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => node.classList.remove('visible'), kind === 'error' ? 8000 : 4500);
}

/* ============================================================================================================
 * 6. State and polling. One long-poll loop: GET /sandbox/api/state?user=…&after=<version> answers when the
 *    version moves past `after` (or after ≤ 25 s with the same one). No fixed-interval polling; on a network
 *    error the loop backs off up to 5 s. Switching the acting user aborts the pending poll and asks at once,
 *    without `after` (ephemerals, the Home and the modals are per user).
 * ========================================================================================================== */

const USER_KEY = 'warmline.sandbox.user';

const S = {
  user: null,            // the acting user's id
  state: null,           // the last state rendered
  stateUser: null,       // the user that state was fetched for
  poll: { controller: null, generation: 0, failing: false },
  view: { kind: 'channel', id: null },   // 'channel' (id) | 'home' | 'outbox'
  viewStores: new Map(), // view_id → { sig, values, clientErrors }: local input state of views
  rendered: {},          // cache keys of what is on screen (render only what changed)
  messageNodes: new Map(), // "channel|ts|ephemeral" → { sig, node }
  seen: new Map(),       // channel id → newest ts the user has looked at (sidebar unread marks)
  seenReady: false,      // whether `seen` holds the channels the page opened on
  clock: null,           // { now: Date, at: performance.now(), offset }
};

/** Restarts the long poll now (user switch): the pending request is aborted and its answer ignored. */
function restartPoll() {
  S.poll.generation += 1;
  if (S.poll.controller) S.poll.controller.abort();
}

async function pollLoop() {
  let backoff = 500;
  for (;;) {
    const generation = S.poll.generation;
    const controller = new AbortController();
    S.poll.controller = controller;
    const params = new URLSearchParams();
    if (S.user) params.set('user', S.user);
    // No `after` after a failure: a restarted server counts versions from scratch and would make us wait 25 s.
    if (S.state && S.stateUser === S.user && S.user && !S.poll.failing) params.set('after', String(S.state.version));
    try {
      const state = await request('GET', `/sandbox/api/state?${params}`, undefined, controller.signal);
      if (generation !== S.poll.generation) continue; // asked for another user meanwhile
      if (S.poll.failing) {
        S.poll.failing = false;
        S.state = null; // whatever the version says, this may be another server: render it all
        toast('info', 'Reconnected to the sandbox server.');
      }
      backoff = 500;
      applyState(state, params.get('user'));
    } catch (error) {
      if (error.name === 'AbortError' || generation !== S.poll.generation) continue;
      if (S.user && error.status >= 400 && error.status < 500) {
        // A remembered user this server does not know (another sandbox): ask for the default one instead.
        S.user = null;
        continue;
      }
      if (!S.poll.failing) toast('error', `${error.message} Retrying…`);
      S.poll.failing = true;
      document.body.classList.add('disconnected');
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 5000);
    }
  }
}

function applyState(state, askedUser) {
  document.body.classList.remove('disconnected');
  const users = state.users || [];
  // No user yet (first visit) or a stale one (another sandbox): act as the first user and ask again for them.
  if (users.length && !users.some((u) => u.id === S.user)) {
    setUser(users[0].id, { replace: true });
    return;
  }
  if (askedUser !== S.user) return;
  const changed = !S.state || S.state.version !== state.version || S.stateUser !== S.user;
  S.state = state;
  S.stateUser = S.user;
  directory.update(state, S.user);
  setClock(state.now, state.clock_offset_secs);
  if (changed) renderWorkspace();
  else renderClock();
  document.body.dataset.version = String(state.version);
}

/** Makes `id` the acting user: remembered in localStorage and in ?user=, state fetched again at once. */
function setUser(id, { replace = false } = {}) {
  if (!id || (id === S.user && !replace)) return;
  S.user = id;
  storageSet(USER_KEY, id);
  const url = new URL(window.location.href);
  url.searchParams.set('user', id);
  window.history.replaceState(null, '', url);
  // Views and their typed values belong to the previous user.
  S.viewStores.clear();
  S.rendered = {};
  S.messageNodes.clear();
  S.seen.clear();
  S.seenReady = false;
  restartPoll();
}

/* ============================================================================================================
 * 7. Workspace view: sidebar, header, channel (messages + composer), Home. Each part re-renders only when its
 *    own slice of the state changed, so a poll does not wipe an open menu or a half-typed value elsewhere.
 * ========================================================================================================== */

function renderWorkspace() {
  resolveView();
  renderUserSwitcher();
  renderSidebar();
  renderView();
  renderModals();
  renderClock();
}

function channelsOf(state) {
  return (state && state.channels) || [];
}

/** The selected view from the URL hash, checked against the state (a stale channel falls back). */
function parseHash() {
  const hash = decodeURIComponent(window.location.hash.replace(/^#/, ''));
  if (hash === 'home') return { kind: 'home', id: null };
  if (hash === 'outbox') return { kind: 'outbox', id: null };
  const match = /^channel=(.+)$/.exec(hash);
  return match ? { kind: 'channel', id: match[1] } : { kind: 'channel', id: null };
}

function resolveView() {
  if (S.view.kind !== 'channel') return;
  const channels = channelsOf(S.state);
  if (channels.some((c) => c.id === S.view.id)) return;
  // After a user switch the DM has another id: a DM selection follows to the new user's DM.
  const wasIm = S.view.id && S.view.id.startsWith('D');
  const fallback = (wasIm && channels.find((c) => c.is_im)) || channels.find((c) => !c.is_im) || channels[0];
  if (!fallback) {
    S.view = { kind: 'home', id: null };
    return;
  }
  S.view = { kind: 'channel', id: fallback.id };
  window.history.replaceState(null, '', `#channel=${encodeURIComponent(fallback.id)}`);
}

function renderUserSwitcher() {
  const select = $('#acting-user');
  const users = S.state.users || [];
  const key = JSON.stringify([users, S.user]);
  if (S.rendered.users === key) return;
  S.rendered.users = key;
  select.replaceChildren(...users.map((u) => h('option', {
    value: u.id,
    dataset: { approver: u.approver ? '1' : undefined },
  }, `${u.name}${u.title ? ` — ${u.title}` : ''}${u.approver ? ' ★ approver' : ''}`)));
  select.value = S.user;
}

function newestTs(channelId) {
  let newest = null;
  for (const m of S.state.messages || []) {
    if (m.channel === channelId && (!newest || compareTs(m.ts, newest) > 0)) newest = m.ts;
  }
  return newest;
}

function renderSidebar() {
  const state = S.state;
  if (state.team && state.team.name) $('#team-name').textContent = state.team.name;
  const channels = channelsOf(state);
  // Unread: a channel with a message newer than the newest one seen there (what the page opened on counts as seen).
  for (const c of channels) {
    const newest = newestTs(c.id) || '0';
    const lookingAtIt = S.view.kind === 'channel' && S.view.id === c.id;
    if (lookingAtIt) S.seen.set(c.id, newest);
    else if (!S.seen.has(c.id)) S.seen.set(c.id, S.seenReady ? '0' : newest); // a channel that appears later is all new
  }
  S.seenReady = true;
  const unread = (c) => compareTs(newestTs(c.id) || '0', S.seen.get(c.id) || '0') > 0;
  const key = JSON.stringify([channels, S.view, channels.map(unread)]);
  if (S.rendered.sidebar !== key) {
    S.rendered.sidebar = key;
    const link = (c, label) => h('a', {
      class: ['nav-item', S.view.kind === 'channel' && S.view.id === c.id ? 'active' : '', unread(c) ? 'unread' : ''].join(' ').trim(),
      href: `#channel=${encodeURIComponent(c.id)}`,
      dataset: { channelId: c.id },
    }, label);
    // Link text is exactly "# name" / the bot's name: icons and the APP badge are drawn by CSS.
    $('#channel-list').replaceChildren(...channels.filter((c) => !c.is_im).map((c) =>
      link(c, [h('span', { class: 'nav-hash' }, '# '), h('span', { class: 'nav-label' }, c.name)])));
    $('#dm-list').replaceChildren(...channels.filter((c) => c.is_im).map((c) => {
      const node = link(c, h('span', { class: 'nav-label' }, directory.botName || c.name));
      node.classList.add('is-im');
      return node;
    }));
  }
  $$('#sidebar a[data-view]').forEach((a) => a.classList.toggle('active', S.view.kind === a.dataset.view));
  $('#outbox-count').textContent = String(state.outbox_count ?? 0);
}

function renderView() {
  const kind = S.view.kind;
  const viewKey = `${kind}:${S.view.id || ''}`;
  const switched = S.rendered.view !== viewKey;
  if (switched) {
    S.rendered.view = viewKey;
    S.rendered.content = null;
    $('#view').replaceChildren();
    $('#view').scrollTop = 0;
    $('#view').dataset.view = kind;
  }
  $('#composer-bar').hidden = kind !== 'channel';
  // Opening the Home tab is an event in Slack (`app_home_opened`): the bot answers by publishing the Home.
  if (kind === 'home' && switched) gesture('/sandbox/api/home', { user: S.user });
  if (kind === 'home') renderHome();
  else if (kind === 'outbox') renderOutbox(switched);
  else renderChannel(switched);
}

function setTitle(title, subtitle) {
  const node = $('#view-title');
  node.replaceChildren(...(Array.isArray(title) ? title : [title]));
  $('#view-subtitle').textContent = subtitle || '';
}

/* ---- channel ------------------------------------------------------------------------------------------------ */

function renderChannel(switched) {
  const channel = channelsOf(S.state).find((c) => c.id === S.view.id);
  if (!channel) return;
  const im = channel.is_im;
  setTitle(im ? [directory.botName, ' ', h('span', { class: 'app-badge' }, 'APP')] : `# ${channel.name}`,
    im ? 'Your direct messages with the bot' : `Channel in ${(S.state.team && S.state.team.name) || 'the sandbox'}`);
  const command = S.state.command || '/warm';
  $('#composer').placeholder = im ? `Message ${directory.botName} — try ${command} help` : `Message #${channel.name} — try ${command} help`;
  const hint = $('#composer-hint');
  if (!hint.classList.contains('warn')) hint.textContent = `Slash commands only: ${command} help lists them.`;

  const messages = (S.state.messages || []).filter((m) => m.channel === channel.id);
  const key = JSON.stringify([messages, directory.signature()]);
  if (S.rendered.content === key) return;
  const previousTs = S.rendered.channelTs || [];
  S.rendered.content = key;

  const view = $('#view');
  const nearBottom = view.scrollHeight - view.scrollTop - view.clientHeight < 120;
  let list = $('#messages');
  if (!list) {
    list = h('div', { id: 'messages', class: 'messages' });
    view.replaceChildren(h('div', { class: 'channel-intro' },
      h('div', { class: 'channel-intro-title' }, im ? `This is the start of your conversation with ${directory.botName}` : `This is the very beginning of #${channel.name}`),
      h('div', { class: 'channel-intro-text' }, `Only ${command} commands reach the bot here; everything it posts shows up below.`)), list);
  }

  // Threads: a reply sits under its parent; a reply whose parent is not visible shows as a top-level message.
  const sorted = [...messages].sort((a, b) => compareTs(a.ts, b.ts));
  const present = new Set(sorted.map((m) => m.ts));
  const replies = new Map();
  const top = [];
  for (const m of sorted) {
    if (m.thread_ts && m.thread_ts !== m.ts && present.has(m.thread_ts)) {
      if (!replies.has(m.thread_ts)) replies.set(m.thread_ts, []);
      replies.get(m.thread_ts).push(m);
    } else top.push(m);
  }
  const nodes = [];
  let lastDay = null;
  const used = new Set();
  for (const m of top) {
    const date = tsToDate(m.ts);
    if (dayKey(date) !== lastDay) {
      lastDay = dayKey(date);
      nodes.push(h('div', { class: 'day-divider' }, h('span', {}, formatDay(date))));
    }
    nodes.push(messageNode(m, used));
    const thread = replies.get(m.ts);
    if (thread) {
      nodes.push(h('div', { class: 'thread-replies', dataset: { threadTs: m.ts } },
        h('div', { class: 'thread-label' }, `${thread.length} ${thread.length === 1 ? 'reply' : 'replies'}`),
        thread.map((r) => messageNode(r, used))));
    }
  }
  for (const key of [...S.messageNodes.keys()]) if (!used.has(key)) S.messageNodes.delete(key);
  list.replaceChildren(...nodes);

  // Follow new messages (and the channel just opened); an edit far up does not yank the reader down.
  const currentTs = sorted.map((m) => m.ts);
  const added = currentTs.some((ts) => !previousTs.includes(ts));
  S.rendered.channelTs = currentTs;
  if (switched || added || nearBottom) view.scrollTop = view.scrollHeight;
}

/** A message's node, reused while the message (and the names it shows) did not change. */
function messageNode(message, used) {
  const key = `${message.channel}|${message.ts}|${message.ephemeral ? 'e' : ''}`;
  used.add(key);
  const sig = JSON.stringify([message, directory.signature()]);
  const cached = S.messageNodes.get(key);
  if (cached && cached.sig === sig) return cached.node;
  const node = buildMessage(message);
  S.messageNodes.set(key, { sig, node });
  return node;
}

function buildMessage(message) {
  const fromBot = !message.user || message.user === directory.botId;
  const author = fromBot ? directory.botName : directory.userName(message.user);
  const date = tsToDate(message.ts);
  let content;
  if (Array.isArray(message.blocks) && message.blocks.length) {
    const surface = new Surface({
      kind: 'message',
      container: { type: 'message', channel: message.channel, ts: message.ts },
      values: {},
      send: sendAction,
    });
    content = renderBlocks(message.blocks, surface);
  } else {
    content = h('div', { class: 'message-text bk-mrkdwn' }, mrkdwn(message.text || ''));
  }
  const classes = ['message'];
  if (message.ephemeral) classes.push('ephemeral');
  if (message.thread_ts && message.thread_ts !== message.ts) classes.push('reply');
  return h('div', {
    class: classes.join(' '),
    dataset: { channel: message.channel, ts: message.ts, threadTs: message.thread_ts || undefined, user: message.user || undefined },
  },
  avatar(fromBot, message.user, author),
  h('div', { class: 'message-main' },
    h('div', { class: 'message-meta' },
      h('span', { class: 'message-author' }, author),
      fromBot && h('span', { class: 'app-badge' }, 'APP'),
      h('time', { class: 'message-time', datetime: date.toISOString(), title: date.toLocaleString() }, formatTime(date))),
    message.ephemeral && h('div', { class: 'ephemeral-note' }, h('span', { class: 'ephemeral-eye', 'aria-hidden': 'true' }, '👁'), h('span', {}, 'Only visible to you')),
    h('div', { class: 'message-content' }, content),
    message.edited && h('span', { class: 'edited' }, '(edited)')));
}

function avatar(isBot, userId, name) {
  if (isBot) return h('div', { class: 'avatar avatar-bot', 'aria-hidden': 'true' }, 'w');
  let hash = 0;
  for (const ch of String(userId || name)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  const initials = String(name).split(/\s+/).map((p) => p[0] || '').join('').slice(0, 2).toUpperCase();
  return h('div', { class: `avatar avatar-user avatar-tone-${hash % 6}`, 'aria-hidden': 'true' }, initials || '?');
}

/** Message and Home actions: POST at once; a view's actions carry its current input values. */
function sendAction(surface, action, sourceNode) {
  const body = { user: S.user, container: clone(surface.container), action };
  if (surface.container && surface.container.type === 'view') body.state = { values: clone(surface.values) };
  return withBusy(sourceNode, () => gesture('/sandbox/api/action', body));
}

/* ---- composer: only the bot's slash command goes anywhere --------------------------------------------------- */

async function sendComposer(event) {
  event.preventDefault();
  const input = $('#composer');
  const hint = $('#composer-hint');
  const text = input.value.trim();
  if (!text || !S.state || S.view.kind !== 'channel') return;
  const command = S.state.command || '/warm';
  if (!(text === command || text.startsWith(`${command} `))) {
    hint.textContent = `Only ${command} commands reach the bot here`;
    hint.classList.add('warn');
    return;
  }
  hint.classList.remove('warn');
  hint.textContent = `Sent ${text.split(/\s+/).slice(0, 2).join(' ')} to ${directory.botName}…`;
  const answer = await withBusy($('#composer-send'), () =>
    gesture('/sandbox/api/command', { user: S.user, channel: S.view.id, text }));
  if (answer) {
    input.value = '';
    hint.textContent = `Slash commands only: ${command} help lists them.`;
  }
  input.focus();
}

/* ---- Home -------------------------------------------------------------------------------------------------- */

/** The local state of a view (typed values, client-side errors); reset when the server sends another view. */
function viewStore(viewId, view) {
  const sig = JSON.stringify(view);
  let store = S.viewStores.get(viewId);
  if (!store || store.sig !== sig) {
    store = { sig, values: {}, clientErrors: {} };
    S.viewStores.set(viewId, store);
  }
  return store;
}

function renderHome() {
  const home = S.state.home;
  setTitle([directory.botName, ' ', h('span', { class: 'app-badge' }, 'APP')], 'App Home');
  const key = JSON.stringify([home, directory.signature()]);
  if (S.rendered.content === key) return;
  S.rendered.content = key;
  const im = channelsOf(S.state).find((c) => c.is_im);
  const tabs = h('nav', { class: 'home-tabs' },
    h('span', { class: 'home-tab active' }, 'Home'),
    im && h('a', { class: 'home-tab', href: `#channel=${encodeURIComponent(im.id)}` }, 'Messages'));
  const header = h('div', { class: 'home-header' }, avatar(true, null, directory.botName),
    h('div', {}, h('div', { class: 'home-app-name' }, directory.botName), tabs));
  if (!home) {
    $('#view').replaceChildren(h('div', { class: 'home' }, header,
      h('div', { class: 'empty-state' }, `${directory.botName} has not published a Home for you yet.`)));
    return;
  }
  const viewId = home.id || 'home';
  const store = viewStore(viewId, home);
  const surface = new Surface({
    kind: 'view',
    container: { type: 'view', view_id: viewId },
    values: store.values,
    send: sendAction,
  });
  const scroll = $('#view').scrollTop;
  $('#view').replaceChildren(h('div', { class: 'home', dataset: { viewId } }, header,
    h('div', { class: 'home-blocks' }, renderBlocks(home.blocks, surface))));
  $('#view').scrollTop = scroll; // a refreshed Home keeps the reader's place
}

/* ============================================================================================================
 * 8. Modals and confirm dialogs. The top of state.modals is drawn over an overlay. Its typed values live in the
 *    view's store (S.viewStores), so a poll that brings the same view changes nothing on screen; a view the
 *    server replaced (views.update: other hash or content) starts again from its new initial values.
 *    Errors shown = the server's (submission answer, state.modals[i].errors) or Slack's own client-side ones;
 *    editing a field clears its error, as in Slack.
 * ========================================================================================================== */

/** The modal on screen: { viewId, sig, errSig, node, body, general }. */
let currentModal = null;

function renderModals() {
  const modals = S.state.modals || [];
  const root = $('#modal-root');
  // Forget the typed values of views that are gone (the Home's store stays).
  const keep = new Set(modals.map((m) => m.view_id));
  keep.add((S.state.home && S.state.home.id) || 'home');
  for (const id of [...S.viewStores.keys()]) if (!keep.has(id)) S.viewStores.delete(id);

  const top = modals[modals.length - 1];
  if (!top) {
    root.replaceChildren();
    currentModal = null;
    document.body.classList.remove('modal-open');
    return;
  }
  const store = viewStore(top.view_id, top.view);
  const errSig = JSON.stringify(top.errors || {});
  let newErrors = false;
  if (store.errSig !== errSig) {
    // The server's verdict is newer than anything shown: it replaces the errors on screen.
    store.errSig = errSig;
    store.errors = { ...(top.errors || {}) };
    newErrors = Object.keys(store.errors).length > 0;
  }
  if (currentModal && currentModal.viewId === top.view_id && currentModal.sig === store.sig && currentModal.node.isConnected) {
    showFieldErrors(currentModal.body, store.errors, currentModal.general);
    if (newErrors) revealFirstError(currentModal.body);
    return;
  }
  const sameView = currentModal && currentModal.viewId === top.view_id;
  const scroll = sameView ? currentModal.body.scrollTop : 0;
  const surface = new Surface({
    kind: 'view',
    container: { type: 'view', view_id: top.view_id },
    values: store.values,
    send: sendAction,
    onEdit: (blockId) => {
      if (store.errors && store.errors[blockId]) {
        delete store.errors[blockId];
        showFieldErrors(card.body, store.errors, card.general);
      }
    },
  });
  const card = modalCard(top.view || {}, surface, {
    onSubmit: (button) => submitModal(top, store, card, button),
    onClose: (button) => closeModal(top.view_id, button),
  });
  card.node.dataset.viewId = top.view_id;
  card.node.dataset.stackDepth = String(modals.length);
  // An update in place swaps the card only: the overlay (and its fade-in) stays for the whole modal stack.
  const overlay = $('.modal-overlay', root);
  if (overlay) overlay.replaceChildren(card.node);
  else root.replaceChildren(h('div', { class: 'modal-overlay' }, card.node));
  document.body.classList.add('modal-open');
  showFieldErrors(card.body, store.errors, card.general);
  card.body.scrollTop = scroll;
  currentModal = { viewId: top.view_id, sig: store.sig, node: card.node, body: card.body, general: card.general };
  if (!sameView) focusFirstField(card.node);
}

/** A view drawn as Slack's modal card: title, blocks, close and (when the view has one) submit. */
function modalCard(view, surface, { onSubmit, onClose }) {
  const titleId = uid('modal-title-');
  const general = h('div', { class: 'modal-general-error', hidden: true });
  const body = h('div', { class: 'modal-body' }, general, renderBlocks(view.blocks, surface));
  const close = h('button', { type: 'button', class: 'modal-close' }, textString(view.close) || 'Cancel');
  const submit = view.submit ? h('button', { type: 'button', class: 'modal-submit' }, textString(view.submit)) : null;
  close.addEventListener('click', () => onClose(close));
  if (submit) submit.addEventListener('click', () => onSubmit(submit));
  const node = h('div', { class: 'modal', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId, dataset: { callbackId: view.callback_id } },
    h('header', { class: 'modal-header' },
      h('span', { class: 'avatar avatar-bot modal-app-icon', 'aria-hidden': 'true' }, 'w'),
      h('h2', { class: 'modal-title', id: titleId }, textObject(view.title)),
      h('button', { type: 'button', class: 'modal-x', 'aria-label': 'Close', onclick: () => onClose(close) }, '×')),
    body,
    h('footer', { class: 'modal-footer' }, close, submit));
  return { node, body, general };
}

/** Scrolls the first error of a view into sight (the submit button is at the bottom, the field may be at the top). */
function revealFirstError(body) {
  const first = $('.block.has-error', body) || $('.modal-general-error:not([hidden])', body);
  if (first) first.scrollIntoView({ block: 'nearest' });
}

function focusFirstField(root) {
  const target = $('[data-focus-on-load]', root) || $('.modal-body input:not([type=radio]):not([type=checkbox]), .modal-body textarea, .modal-body select', root);
  if (target) target.focus({ preventScroll: true });
}

async function submitModal(top, store, card, button) {
  const errors = clientErrors((top.view || {}).blocks, store.values);
  if (Object.keys(errors).length) {
    // Slack refuses to send a submission with an empty required field; so does the sandbox.
    store.errors = errors;
    showFieldErrors(card.body, errors, card.general);
    revealFirstError(card.body);
    return;
  }
  const showServerErrors = (answerErrors) => {
    if (!answerErrors || !Object.keys(answerErrors).length || !card.node.isConnected) return;
    store.errors = { ...answerErrors };
    showFieldErrors(card.body, store.errors, card.general);
    revealFirstError(card.body);
  };
  const answer = await withBusy(button, () => gesture('/sandbox/api/view/submit',
    { user: S.user, view_id: top.view_id, state: { values: clone(store.values) } },
    (error) => showServerErrors(error.data && error.data.errors)));
  if (answer) showServerErrors(answer.errors);
}

function closeModal(viewId, button) {
  return withBusy(button, () => gesture('/sandbox/api/view/close', { user: S.user, view_id: viewId }));
}

/**
 * Slack's confirmation dialog for an element's `confirm` object. Resolves true on the confirm button, false on
 * deny, Escape or a click outside. Buttons: .confirm-ok (style danger or primary) and .confirm-cancel.
 */
function confirmDialog(confirm) {
  return new Promise((resolve) => {
    const previous = document.activeElement;
    const onKey = (event) => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        event.preventDefault();
        done(false);
      }
    };
    const done = (ok) => {
      overlay.remove();
      document.removeEventListener('keydown', onKey, true);
      if (previous && previous.isConnected && previous.focus) previous.focus({ preventScroll: true });
      resolve(ok);
    };
    const ok = h('button', { type: 'button', class: `confirm-ok ${confirm.style === 'danger' ? 'danger' : 'primary'}`, onclick: () => done(true) },
      textString(confirm.confirm) || 'Yes');
    const cancel = h('button', { type: 'button', class: 'confirm-cancel', onclick: () => done(false) }, textString(confirm.deny) || 'Cancel');
    const overlay = h('div', { class: 'confirm-overlay', onclick: (event) => { if (event.target === overlay) done(false); } },
      h('div', { class: 'confirm-dialog', role: 'alertdialog', 'aria-modal': 'true' },
        h('h3', { class: 'confirm-title' }, textObject(confirm.title || 'Are you sure?')),
        h('div', { class: 'confirm-text' }, textObject(confirm.text)),
        h('div', { class: 'confirm-actions' }, cancel, ok)));
    document.addEventListener('keydown', onKey, true);
    document.body.append(overlay);
    ok.focus();
  });
}

/* ============================================================================================================
 * 9. Outbox: what warmline "sent" through the sandbox providers. Reloaded when the view opens and whenever the
 *    state moves while it is open (outbox_count, new events). Captures are keyed by id, so an unchanged one keeps
 *    its node (its email iframe does not reload, a half-typed reply stays).
 * ========================================================================================================== */

const OUTBOX_CHANNELS = [
  { id: 'email', label: 'Email', icon: '✉️' },
  { id: 'sms', label: 'SMS', icon: '📱' },
  { id: 'whatsapp', label: 'WhatsApp', icon: '💬' },
  { id: 'instagram', label: 'Instagram', icon: '📷' },
];

const FEEDBACK = [
  { event: 'delivered', label: 'Delivered', title: 'The provider reports it delivered' },
  { event: 'bounced', label: 'Bounced', title: 'The provider reports a hard bounce' },
  { event: 'complained', label: 'Complained', title: 'The recipient marks it as spam' },
  { event: 'reply', label: 'Reply…', title: 'The recipient answers' },
  { event: 'stop', label: 'STOP', title: 'The recipient answers STOP (opt-out)' },
];

const DEFAULT_REPLY = "Thanks — let's talk next week";

const outbox = { captures: null, tab: null, nodes: new Map(), loading: false, again: false, loadedVersion: null };

async function loadOutbox() {
  if (outbox.loading) {
    outbox.again = true; // one more load when this one ends, never two at once
    return;
  }
  outbox.loading = true;
  try {
    const data = await request('GET', '/sandbox/api/outbox');
    outbox.captures = Array.isArray(data.captures) ? data.captures : [];
  } catch (error) {
    toast('error', error.message);
  } finally {
    outbox.loading = false;
  }
  if (outbox.again) {
    outbox.again = false;
    loadOutbox();
    return;
  }
  if (S.view.kind === 'outbox') drawOutbox();
}

function renderOutbox(switched) {
  setTitle('Outbox', 'What warmline sent in the sandbox: captured here, delivered nowhere.');
  if (switched || outbox.loadedVersion !== S.state.version) {
    outbox.loadedVersion = S.state.version;
    loadOutbox();
  }
  if (switched) drawOutbox();
}

function drawOutbox() {
  const view = $('#view');
  let root = $('.outbox', view);
  if (!root) {
    root = h('div', { class: 'outbox' }, h('nav', { class: 'outbox-tabs', role: 'tablist' }), h('div', { class: 'outbox-list' }));
    view.replaceChildren(root);
  }
  const tabsNode = $('.outbox-tabs', root);
  const list = $('.outbox-list', root);
  const captures = outbox.captures;
  if (captures === null) {
    tabsNode.replaceChildren();
    list.replaceChildren(h('div', { class: 'empty-state' }, 'Loading the outbox…'));
    return;
  }
  const channels = [...OUTBOX_CHANNELS];
  for (const c of captures) {
    if (!channels.some((k) => k.id === c.channel)) channels.push({ id: c.channel, label: c.channel, icon: '📨' });
  }
  const count = (id) => captures.filter((c) => c.channel === id).length;
  if (!outbox.tab) outbox.tab = (channels.find((k) => count(k.id) > 0) || channels[0]).id;
  tabsNode.replaceChildren(...channels.map((k) => h('button', {
    type: 'button',
    role: 'tab',
    class: `outbox-tab${k.id === outbox.tab ? ' active' : ''}`,
    'aria-selected': k.id === outbox.tab ? 'true' : 'false',
    dataset: { outboxTab: k.id },
    onclick: () => {
      outbox.tab = k.id;
      drawOutbox();
    },
  }, h('span', { class: 'outbox-tab-icon', 'aria-hidden': 'true' }, k.icon), k.label, h('span', { class: 'count' }, String(count(k.id))))));

  const shown = captures.filter((c) => c.channel === outbox.tab);
  const used = new Set();
  const nodes = shown.map((capture) => {
    const key = String(capture.id);
    used.add(key);
    const sig = JSON.stringify(capture);
    const cached = outbox.nodes.get(key);
    if (cached && cached.sig === sig) return cached.node;
    const node = captureNode(capture);
    outbox.nodes.set(key, { sig, node });
    return node;
  });
  for (const key of [...outbox.nodes.keys()]) if (!used.has(key)) outbox.nodes.delete(key);
  const label = (channels.find((k) => k.id === outbox.tab) || { label: outbox.tab }).label;
  list.replaceChildren(...(nodes.length ? nodes : [h('div', { class: 'empty-state' }, `Nothing sent by ${label} yet.`)]));
}

function captureNode(capture) {
  const captured = parseDate(capture.captured_at);
  const meta = [
    ['To', capture.to, 'capture-to'],
    ['From', capture.from, 'capture-from'],
    ['Subject', capture.subject, 'capture-subject'],
    ['Kind', capture.kind, 'capture-kind'],
    ['State', capture.state, 'capture-state'],
    ['Provider', capture.provider, 'capture-provider'],
    ['Captured', captured ? formatDateTime(captured) : capture.captured_at, 'capture-time'],
    ['Message', capture.message_id, 'capture-message-id'],
  ].filter(([, value]) => value !== undefined && value !== null && value !== '');

  const node = h('article', { class: 'capture', dataset: { captureId: capture.id, channel: capture.channel } },
    h('header', { class: 'capture-head' },
      h('div', { class: 'capture-title' }, capture.subject || (capture.channel === 'email' ? '(no subject)' : `To ${capture.to || 'unknown'}`)),
      capture.kind && h('span', { class: `badge kind-${capture.kind}` }, capture.kind),
      capture.state && h('span', { class: `badge state state-${capture.state}` }, capture.state),
      captured && h('time', { class: 'capture-when', datetime: captured.toISOString() }, formatDateTime(captured))),
    h('dl', { class: 'capture-meta' }, meta.map(([label, value, cls]) => [h('dt', {}, label), h('dd', { class: cls }, String(value))])),
    capture.channel === 'email' ? emailBody(capture) : phoneBody(capture),
    captureEvents(capture),
    feedbackBar(capture));
  return node;
}

function emailBody(capture) {
  const headers = Object.entries(capture.headers || {});
  const html = safeUrl(capture.html_url, { relative: true });
  return h('div', { class: 'capture-email' },
    headers.length && h('details', { class: 'capture-headers-box', open: true },
      h('summary', {}, `Headers (${headers.length})`),
      h('table', { class: 'capture-headers' }, h('tbody', {}, headers.map(([name, value]) =>
        h('tr', { dataset: { header: name } }, h('th', { scope: 'row' }, name), h('td', {}, String(value))))))),
    html && h('div', { class: 'capture-part' },
      h('div', { class: 'capture-part-label' }, 'HTML part'),
      // Sandboxed: the email's own links navigate inside the frame (the unsubscribe page opens there); no scripts.
      h('iframe', { class: 'capture-html', sandbox: 'allow-forms allow-popups allow-popups-to-escape-sandbox', src: html, title: `HTML of ${capture.subject || 'the email'}`, loading: 'lazy' })),
    capture.text && h('div', { class: 'capture-part' },
      h('div', { class: 'capture-part-label' }, 'Text part'),
      h('pre', { class: 'capture-text' }, String(capture.text))));
}

function phoneBody(capture) {
  const segments = Number(capture.segments);
  return h('div', { class: `capture-phone phone-${capture.channel}` },
    h('div', { class: 'phone' },
      h('div', { class: 'phone-top' }, capture.to || ''),
      h('div', { class: 'phone-screen' }, h('div', { class: 'bubble capture-text' }, String(capture.text ?? '')))),
    Number.isFinite(segments) && segments > 0 && h('div', { class: 'capture-segments' },
      `${segments} segment${segments === 1 ? '' : 's'}${capture.encoding ? ` (${capture.encoding})` : ''}`));
}

function captureEvents(capture) {
  const events = capture.events || [];
  return h('section', { class: 'capture-events' },
    h('h4', {}, 'Events'),
    events.length
      ? h('ol', { class: 'timeline' }, events.map((event) => {
        const at = parseDate(event.at);
        return h('li', { class: 'capture-event', dataset: { eventType: event.type } },
          h('time', { datetime: at ? at.toISOString() : null }, at ? formatDateTime(at) : event.at || ''),
          h('span', { class: 'event-type' }, event.type || ''),
          event.detail && h('span', { class: 'event-detail' }, String(event.detail)));
      }))
      : h('div', { class: 'timeline-empty' }, 'No event yet: simulate one below.'));
}

function feedbackBar(capture) {
  const replyText = h('input', { type: 'text', class: 'feedback-reply-text', value: DEFAULT_REPLY, 'aria-label': 'Reply text' });
  const replySend = h('button', { type: 'submit', class: 'feedback-reply-send primary' }, 'Send reply');
  const replyForm = h('form', { class: 'feedback-reply', hidden: true },
    replyText, replySend,
    h('button', { type: 'button', class: 'feedback-reply-cancel', onclick: () => { replyForm.hidden = true; } }, 'Cancel'));
  replyForm.addEventListener('submit', (event) => {
    event.preventDefault();
    sendFeedback(capture, 'reply', replyText.value, replySend);
  });
  const buttons = FEEDBACK.map((f) => h('button', {
    type: 'button',
    class: 'feedback-button',
    title: f.title,
    dataset: { feedback: f.event },
    onclick: (event) => {
      if (f.event === 'reply') {
        replyForm.hidden = !replyForm.hidden;
        if (!replyForm.hidden) replyText.select();
      } else sendFeedback(capture, f.event, undefined, event.currentTarget);
    },
  }, f.label));
  return h('div', { class: 'capture-feedback' },
    h('div', { class: 'feedback-row' }, h('span', { class: 'feedback-label' }, 'Simulate:'), buttons),
    replyForm);
}

async function sendFeedback(capture, event, text, button) {
  const body = { event };
  if (text !== undefined) body.text = text;
  const answer = await withBusy(button, () =>
    gesture(`/sandbox/api/outbox/${encodeURIComponent(capture.id)}/feedback`, body));
  if (!answer) return;
  toast('info', answer.detail || `Sent "${event}" for this message.`);
  loadOutbox();
}

/* ============================================================================================================
 * 10. Clock: warmline's clock (it may run ahead of real time). Shown in the sidebar, moved by the buttons; between
 *     two states it ticks locally from the last known `now`.
 * ========================================================================================================== */

function setClock(now, offset) {
  const date = parseDate(now);
  if (date) S.clock = { now: date, at: performance.now(), offset: Number(offset) || 0 };
}

function formatOffset(seconds) {
  if (!seconds) return 'real time';
  const abs = Math.abs(seconds);
  const parts = [];
  const days = Math.floor(abs / 86400);
  const hours = Math.floor((abs % 86400) / 3600);
  const minutes = Math.floor((abs % 3600) / 60);
  if (days) parts.push(`${days} d`);
  if (hours) parts.push(`${hours} h`);
  if (minutes && !days) parts.push(`${minutes} min`);
  return `${parts.join(' ') || `${abs} s`} ${seconds > 0 ? 'ahead' : 'behind'}`;
}

function renderClock() {
  if (!S.clock) return;
  const now = new Date(S.clock.now.getTime() + (performance.now() - S.clock.at));
  const clock = $('#clock');
  clock.textContent = formatDateTime(now);
  clock.title = now.toISOString();
  clock.dataset.now = S.clock.now.toISOString();
  const offset = $('#clock-offset');
  offset.textContent = formatOffset(S.clock.offset);
  offset.classList.toggle('ahead', S.clock.offset !== 0);
}

async function advanceClock(button) {
  const seconds = Number(button.dataset.advance);
  const answer = await withBusy(button, () => gesture('/sandbox/api/clock', { advance_secs: seconds }));
  if (!answer) return;
  setClock(answer.now, answer.clock_offset_secs);
  renderClock();
  toast('info', `warmline's clock now reads ${$('#clock').textContent} (${formatOffset(S.clock ? S.clock.offset : 0)}).`);
}

/* ============================================================================================================
 * 11. Kit mode (/sandbox/kit): every layout from GET /sandbox/api/kit rendered into section.kit-layout[data-name],
 *     KIT_EXTRA first. Then #kit-unsupported gets the sorted, de-duplicated list of what could not be rendered
 *     and body[data-kit-done="1"] is set. Gestures in the gallery are shown in a toast, never sent.
 * ========================================================================================================== */

/** A small inline picture for the every-type layout (the page never loads anything from outside). */
const KIT_IMAGE = `data:image/svg+xml,${encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">' +
  '<stop offset="0" stop-color="#f2994a"/><stop offset="1" stop-color="#eb5757"/></linearGradient></defs>' +
  '<rect width="64" height="64" rx="14" fill="url(#g)"/><path d="M14 22l8 22 10-18 10 18 8-22" fill="none" ' +
  'stroke="#fff" stroke-width="5" stroke-linecap="round" stroke-linejoin="round"/></svg>')}`;

const pt = (text) => ({ type: 'plain_text', text, emoji: true });
const md = (text) => ({ type: 'mrkdwn', text });
const opt = (text, value, description) => (description ? { text: pt(text), value, description: pt(description) } : { text: pt(text), value });
const CONFIRM_DANGER = {
  title: pt('Cancel the campaign?'), text: md('Messages not yet sent will *never* be sent.'),
  confirm: pt('Cancel campaign'), deny: pt('Back'), style: 'danger',
};

/** One message with every block and element type the renderer supports (kit mode proves the coverage). */
const KIT_EXTRA = [
  { type: 'header', text: pt('Every block and element :sparkles:') },
  {
    type: 'section',
    block_id: 'mrkdwn',
    text: md('*bold* _italic_ ~strike~ `code` and *_nested_* styles; <https://example.com/docs|a link>, ' +
      '<https://example.com>, <mailto:ada@example.com|mail Ada>; <@U0SBREQ> and <@U0SBBOT>; ' +
      '<#C0SBAPPROVALS> and <#C0SBAPPROVALS|approvals>; <!here> <!channel> <!subteam^S0SALES|@sales>; ' +
      '<!date^1765134000^{date_short}|Dec 7th>; :white_check_mark: :x: :warning: :fire: :snowflake: :thermometer: ' +
      ':hourglass_flowing_sand: :tada: :rocket: and :not_an_emoji:; escapes &lt;b&gt; &amp; co\n' +
      '&gt; a quoted line\n```{"preformatted": true}```'),
  },
  {
    type: 'section',
    block_id: 'fields',
    fields: [md('*Audience*\n42 contact(s)'), md('*Channel*\nemail'), md('*Risk*\n6 / 10'), pt('When: now')],
  },
  { type: 'section', block_id: 'acc_button', text: md('A section with a button accessory.'), accessory: { type: 'button', action_id: 'open', value: '3', text: pt('Open') } },
  { type: 'section', block_id: 'acc_image', text: md('A section with an image accessory.'), accessory: { type: 'image', image_url: KIT_IMAGE, alt_text: 'warmline' } },
  {
    type: 'section',
    block_id: 'acc_overflow',
    text: md('A section with an overflow menu.'),
    accessory: { type: 'overflow', action_id: 'more', options: [opt('Edit', 'edit'), opt('Duplicate', 'dup'), { text: pt('Docs'), value: 'docs', url: 'https://example.com/docs' }] },
  },
  {
    type: 'section',
    block_id: 'acc_select',
    text: md('A section with a grouped select.'),
    accessory: {
      type: 'static_select', action_id: 'grouped', placeholder: pt('Pick a template'),
      option_groups: [{ label: pt('Email'), options: [opt('Check-in', 'check_in'), opt('Newsletter', 'newsletter')] },
        { label: pt('SMS'), options: [opt('Reminder', 'reminder')] }],
    },
  },
  {
    type: 'context',
    block_id: 'context',
    elements: [{ type: 'image', image_url: KIT_IMAGE, alt_text: 'logo' }, md('Context with *mrkdwn*'), pt('and plain text :wave:')],
  },
  { type: 'image', block_id: 'image', title: pt('An image block'), image_url: KIT_IMAGE, alt_text: 'warmline logo' },
  { type: 'divider', block_id: 'divider' },
  {
    type: 'actions',
    block_id: 'buttons',
    elements: [
      { type: 'button', action_id: 'plain', value: 'p', text: pt('Default') },
      { type: 'button', action_id: 'approve', value: '17', style: 'primary', text: pt('Approve') },
      { type: 'button', action_id: 'cancel', value: '17', style: 'danger', text: pt('Cancel campaign'), confirm: CONFIRM_DANGER },
      { type: 'button', action_id: 'docs', url: 'https://example.com/docs', text: pt('Docs') },
      { type: 'overflow', action_id: 'overflow', options: [opt('Pause', 'pause'), opt('Resume', 'resume')] },
    ],
  },
  {
    type: 'actions',
    block_id: 'selects',
    elements: [
      { type: 'static_select', action_id: 'static', placeholder: pt('Static'), options: [opt('One', '1'), opt('Two', '2')], initial_option: opt('Two', '2') },
      { type: 'external_select', action_id: 'external', placeholder: pt('External'), initial_option: opt('Ada Lovelace', 'c_7') },
      { type: 'users_select', action_id: 'user', placeholder: pt('A user'), initial_user: 'U0SBREQ' },
      { type: 'conversations_select', action_id: 'conversation', placeholder: pt('A conversation') },
      { type: 'channels_select', action_id: 'channel', placeholder: pt('A channel') },
    ],
  },
  {
    type: 'actions',
    block_id: 'multi',
    elements: [
      { type: 'multi_static_select', action_id: 'tags', placeholder: pt('Tags'), options: [opt('investor', 'investor'), opt('seed', 'seed'), opt('press', 'press')], initial_options: [opt('seed', 'seed')] },
      { type: 'multi_users_select', action_id: 'approvers', placeholder: pt('Approvers'), initial_users: ['U0SBREQ'] },
    ],
  },
  {
    type: 'actions',
    block_id: 'pickers',
    elements: [
      { type: 'datepicker', action_id: 'date', initial_date: '2026-12-08', placeholder: pt('A date') },
      { type: 'timepicker', action_id: 'time', initial_time: '09:30', placeholder: pt('A time') },
      { type: 'datetimepicker', action_id: 'datetime', initial_date_time: 1796720400 },
    ],
  },
  {
    type: 'actions',
    block_id: 'choices',
    elements: [
      { type: 'radio_buttons', action_id: 'mode', options: [opt('A segment', 'segment'), opt('A list', 'list', 'Paste email addresses')], initial_option: opt('A segment', 'segment') },
      { type: 'checkboxes', action_id: 'channels', options: [{ text: md('*Email*'), value: 'email' }, opt('SMS', 'sms')], initial_options: [{ text: md('*Email*'), value: 'email' }] },
    ],
  },
  { type: 'input', block_id: 'name', label: pt('Name'), hint: pt('Between 3 and 150 characters.'), element: { type: 'plain_text_input', action_id: 'name', min_length: 3, max_length: 150, placeholder: pt('December check-in'), initial_value: 'Q4 update' } },
  { type: 'input', block_id: 'body', label: pt('Message'), optional: true, element: { type: 'plain_text_input', action_id: 'body', multiline: true, max_length: 3000 } },
  { type: 'input', block_id: 'email', label: pt('Email'), optional: true, element: { type: 'email_text_input', action_id: 'email', placeholder: pt('ada@example.com') } },
  { type: 'input', block_id: 'url', label: pt('Website'), optional: true, hint: md('With `https://`'), element: { type: 'url_text_input', action_id: 'url' } },
  { type: 'input', block_id: 'count', label: pt('Warmth at least'), optional: true, element: { type: 'number_input', action_id: 'count', is_decimal_allowed: true, min_value: '0', max_value: '100', initial_value: '25' } },
  {
    type: 'input', block_id: 'template', dispatch_action: true, label: pt('Start from a template'),
    element: { type: 'static_select', action_id: 'template', placeholder: pt('Choose a template'), options: [opt('Check-in', 'check_in'), opt('Newsletter', 'newsletter')] },
  },
  {
    type: 'rich_text',
    block_id: 'rich',
    elements: [
      {
        type: 'rich_text_section',
        elements: [
          { type: 'text', text: 'Rich text: ' }, { type: 'text', text: 'bold', style: { bold: true } }, { type: 'text', text: ', ' },
          { type: 'text', text: 'italic', style: { italic: true } }, { type: 'text', text: ', ' },
          { type: 'text', text: 'strike', style: { strike: true } }, { type: 'text', text: ', ' },
          { type: 'text', text: 'code', style: { code: true } }, { type: 'text', text: ', ' },
          { type: 'link', url: 'https://example.com', text: 'a link' }, { type: 'text', text: ', ' },
          { type: 'user', user_id: 'U0SBREQ' }, { type: 'text', text: ' in ' }, { type: 'channel', channel_id: 'C0SBAPPROVALS' },
          { type: 'text', text: ' ' }, { type: 'emoji', name: 'tada', unicode: '1f389' },
        ],
      },
      { type: 'rich_text_list', style: 'bullet', elements: [{ type: 'rich_text_section', elements: [{ type: 'text', text: 'a bullet' }] }, { type: 'rich_text_section', elements: [{ type: 'text', text: 'another' }] }] },
      { type: 'rich_text_list', style: 'ordered', indent: 1, elements: [{ type: 'rich_text_section', elements: [{ type: 'text', text: 'first' }] }, { type: 'rich_text_section', elements: [{ type: 'text', text: 'second' }] }] },
      { type: 'rich_text_quote', elements: [{ type: 'text', text: 'A quote.' }] },
      { type: 'rich_text_preformatted', elements: [{ type: 'text', text: 'warmline doctor --channel email' }] },
    ],
  },
  { type: 'file', block_id: 'file', external_id: 'WARMLINE_EXPORT', source: 'remote' },
  {
    type: 'video', block_id: 'video', title: pt('How approvals work'), title_url: 'https://example.com/video',
    video_url: 'https://example.com/embed', thumbnail_url: KIT_IMAGE, alt_text: 'How approvals work', description: pt('Two minutes.'),
    author_name: 'warmline', provider_name: 'Example',
  },
];

/** Gestures in the gallery go nowhere: they are shown, so a reader sees what would be sent. */
function kitSend(surface, action) {
  const shown = { ...action };
  if (surface.kind === 'view') shown.state = { values: surface.values };
  toast('info', `Gallery only, nothing sent: ${JSON.stringify(shown)}`);
  return Promise.resolve(null);
}

function kitSection(layout) {
  const collected = new Set();
  unsupportedCollector = collected;
  let rendered;
  try {
    rendered = kitRender(layout);
  } finally {
    unsupportedCollector = null;
  }
  return h('section', { class: 'kit-layout', dataset: { name: layout.name, surface: layout.surface, unsupported: JSON.stringify([...collected].sort()) } },
    h('h2', { class: 'kit-name' }, layout.name, h('span', { class: `kit-surface surface-${layout.surface}` }, layout.surface)),
    h('div', { class: 'kit-render' }, rendered),
    h('details', { class: 'kit-json' }, h('summary', {}, 'JSON'), h('pre', {}, JSON.stringify(layout.json, null, 2))));
}

function kitRender(layout) {
  const json = layout.json;
  const isView = json && !Array.isArray(json) && typeof json === 'object';
  const blocks = isView ? json.blocks : json;
  const surface = new Surface({ kind: layout.surface === 'message' ? 'message' : 'view', values: {}, send: kitSend });
  if (layout.surface === 'modal' && isView) {
    const card = modalCard(json, surface, {
      onSubmit: () => {
        const errors = clientErrors(json.blocks, surface.values);
        showFieldErrors(card.body, errors, card.general);
        if (!Object.keys(errors).length) toast('info', `Gallery only, nothing sent: ${JSON.stringify({ values: surface.values })}`);
      },
      onClose: () => toast('info', 'Gallery only: the modal would close.'),
    });
    card.node.classList.add('kit-modal');
    surface.onEdit = () => showFieldErrors(card.body, {}, card.general);
    return card.node;
  }
  if (layout.surface === 'home') {
    return h('div', { class: 'home kit-home' }, h('div', { class: 'home-blocks' }, renderBlocks(blocks, surface)));
  }
  return h('div', { class: 'message kit-message' },
    avatar(true, null, directory.botName),
    h('div', { class: 'message-main' },
      h('div', { class: 'message-meta' }, h('span', { class: 'message-author' }, directory.botName), h('span', { class: 'app-badge' }, 'APP')),
      h('div', { class: 'message-content' }, renderBlocks(blocks, surface))));
}

async function startKit() {
  document.body.classList.add('kit-mode');
  $('#app').hidden = true;
  $('#kit').hidden = false;
  document.title = 'warmline sandbox — Block Kit gallery';
  const user = new URLSearchParams(window.location.search).get('user') || storageGet(USER_KEY);
  try {
    // Names for mentions and user/channel selects; the gallery still renders (with ids) without them.
    const state = await request('GET', `/sandbox/api/state${user ? `?user=${encodeURIComponent(user)}` : ''}`);
    directory.update(state);
  } catch {
    /* names are a nicety here */
  }
  let layouts = [];
  try {
    const data = await request('GET', '/sandbox/api/kit');
    layouts = Array.isArray(data.layouts) ? data.layouts : [];
  } catch (error) {
    toast('error', `The gallery could not load the layouts: ${error.message}`);
  }
  const all = [{ name: 'every-type', surface: 'message', json: KIT_EXTRA }, ...layouts];
  $('#kit-layouts').replaceChildren(...all.map(kitSection));
  $('#kit-unsupported').textContent = JSON.stringify([...unsupported].sort());
  document.body.dataset.kitDone = '1';
}

/* ============================================================================================================
 * 12. Start-up
 * ========================================================================================================== */

function startWorkspace() {
  const fromUrl = new URLSearchParams(window.location.search).get('user');
  if (fromUrl) storageSet(USER_KEY, fromUrl); // a shared link's user becomes the remembered one
  S.user = fromUrl || storageGet(USER_KEY) || null;
  S.view = parseHash();

  $('#acting-user').addEventListener('change', (event) => setUser(event.target.value));
  $('#composer-form').addEventListener('submit', sendComposer);
  $('#composer').addEventListener('input', () => {
    const hint = $('#composer-hint');
    if (hint.classList.contains('warn')) {
      hint.classList.remove('warn');
      hint.textContent = `Slash commands only: ${(S.state && S.state.command) || '/warm'} help lists them.`;
    }
  });
  $$('[data-advance]').forEach((button) => button.addEventListener('click', () => advanceClock(button)));
  window.addEventListener('hashchange', () => {
    S.view = parseHash();
    if (!S.state) return;
    resolveView();
    renderSidebar();
    renderView();
  });
  document.addEventListener('click', (event) => {
    if (!event.target.closest || !event.target.closest('.bk-overflow')) closeOverflowMenus();
  });
  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    if ($$('.bk-overflow-menu').some((m) => !m.hidden)) {
      closeOverflowMenus();
      return;
    }
    // Escape closes the modal in Slack too (a confirm dialog catches Escape before this).
    if (currentModal && currentModal.node.isConnected) closeModal(currentModal.viewId, $('.modal-close', currentModal.node));
  });
  setInterval(renderClock, 15000); // the displayed clock ticks; no request is made
  pollLoop();
}

if (window.location.pathname === '/sandbox/kit') startKit();
else startWorkspace();
