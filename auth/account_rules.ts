/**
 * The rules a new account must follow, as Django's `UnicodeUsernameValidator` and its default
 * password validators state them. Each check returns the messages to show beside a field;
 * an empty list means the value is fine.
 */

/** Longest username, in characters (Django's `AbstractUser.username`). */
export const MAX_USERNAME_LENGTH = 150;
/** Shortest password, in characters. */
export const MIN_PASSWORD_LENGTH = 8;
/** How similar (0 to 1) a password may be to the username before it is refused. */
export const MAX_SIMILARITY = 0.7;

const USERNAME_PATTERN = /^[\p{L}\p{N}@.+\-_]+$/u;
const NON_WORD = /[^\p{L}\p{N}_]+/u;

/** Messages for the sign-up form, by field. */
export interface SignUpErrors {
  /** What is wrong with the username; empty when nothing is. */
  username: string[];
  /** What is wrong with the password; empty when nothing is. */
  password1: string[];
  /** What is wrong with the confirmation (it must repeat `password1`). */
  password2: string[];
}

/** What the sign-up form sends. */
export interface SignUpInput {
  /** The name as typed; the rules normalise it before checking. */
  username: string;
  /** The password. */
  password1: string;
  /** The password again, to catch a typo. */
  password2: string;
}

/** The username as it is stored and shown: Unicode NFKC, as Django normalises it. */
export function normalizeUsername(raw: string): string {
  // Composing joins at most 4 code points into one, each at most 2 UTF-16 units: a name longer
  // than 10 units a character cannot come within the limit, and is not normalised, because
  // normalising a long run of combining marks costs time quadratic in its length (a log-in
  // form is read before any throttle).
  return raw.length > MAX_USERNAME_LENGTH * 10 ? raw : raw.normalize("NFKC");
}

/**
 * The key that makes usernames unique regardless of case and Unicode form: lower case of upper
 * case of lower case, a full case folding. `toLowerCase` alone keeps "straße" and "STRASSE", or
 * "ΝΊΚΟΣ" and "νίκος", apart, which differ only by case; the first lowering brings the capital
 * "ẞ", which upper case keeps, to the "ß" that upper case makes "SS".
 */
export function usernameKey(raw: string): string {
  return normalizeUsername(raw).toLowerCase().toUpperCase().toLowerCase();
}

/**
 * The key users were stored under before {@linkcode usernameKey} folded case fully: lower case
 * only. Access tokens are still kept under it (it is made from the user's own name, so it need
 * not fold), and a user stored under it is found by it (see `UserDirectory`).
 */
export function lowerCaseUsernameKey(raw: string): string {
  return normalizeUsername(raw).toLowerCase();
}

// Letters of other scripts drawn like Latin ones, in each case: "Ѕerver" with a Cyrillic "Ѕ"
// shows as "Server". (Unicode's full confusables list is data this project does not ship; these
// are the Cyrillic, Greek, Cherokee and Coptic letters, and the Latin ones such as "ɑ" and "ɡ",
// that its list reads as a Latin letter.) Rows: Cyrillic, Greek, dotless i, Cherokee capitals
// and the few small ones its list reads so (folding makes a capital its small letter, drawn as
// a small capital: so capitals are read before folding), Coptic, and the rest. A letter drawn as
// a capital I (the Coptic "Ⲓ", the Latin iota "Ɩ") is read as "I", as the palochka is, where the
// list says "l": this project keeps "I" and "l" apart, and "Ⲓvan" passes for "Ivan".
const LOOKALIKES: Readonly<Record<string, string>> = Object.fromEntries(
  [
    ["АВСЕНІЈКМОРЅТХУҮѴӀԚԜ", "ABCEHIJKMOPSTXYYVIQW"],
    ["асеіјорѕхуүһԁԛԝѵӏ", "aceijopsxyyhdqwvl"],
    ["ΑΒΕΖΗΙΚΜΝΟΡΤΥΧϹϺ", "ABEZHIKMNOPTYXCM"],
    ["οαινκρτυχϲϳ", "oaivkptuxcj"],
    ["ı", "i"],
    ["ᎠᎡᎢᎥᎩᎪᎫᎬᎳᎷᎻᎽᏀᏂᏃᏏᏒᏔᏕᏙᏚᏞᏟᏢᏦᏧᏳᏴ", "DRTiYAJEWMHYGhZbRWSVSLCPKdGB"],
    ["ꭵꮁꮃꮓꮩꮪꮯ", "irwzvsc"],
    ["ⲂⲎⲒⲔⲘⲚⲞⲢⲤⲦⲨⲬ", "BHIKMNOPCTYX"],
    ["ⲓⲟⲣⲥⲩ", "iopcy"],
    ["ɑɡɪʏǀƖЬҽԌ", "agiylIbeG"],
  ].flatMap(([from, to]) => [...from].map((char, i) => [char, [...to][i]])),
);
const LOOKALIKE = new RegExp(`[${Object.keys(LOOKALIKES).join("")}]`, "gu");

/**
 * The key under which names that look the same are one (see {@linkcode usernameKey}), with the
 * letters of other scripts drawn like Latin ones read as those: reserved names are compared
 * by it, so that no account passes for one with a letter from another script.
 */
export function lookalikeKey(raw: string): string {
  return usernameKey(latinLookalike(raw));
}

/**
 * The name case-folded (see {@linkcode usernameKey}), without the characters that show nothing
 * (a zero-width space, a soft hyphen: an account here cannot hold them, a Django user may), and
 * with its letters of other scripts drawn like Latin ones as those. Read so before folding and
 * after: a capital may be drawn like a Latin capital and its small letter like another letter
 * (the palochka "Ӏ" as "I", "ӏ" as "l"), and a capital whose small letter is the look-alike
 * (Cyrillic "Һ") is read as that one.
 */
export function latinLookalike(raw: string): string {
  const latin = (text: string) => text.replace(LOOKALIKE, (char) => LOOKALIKES[char]);
  return latin(usernameKey(latin(normalizeUsername(raw)).replace(SHOWS_NOTHING, "")));
}

// Unicode's default ignorable characters, which fonts draw as nothing.
const SHOWS_NOTHING = /\p{Default_Ignorable_Code_Point}/gu;

/** Problems with a (normalised) username. */
export function usernameErrors(username: string): string[] {
  if (username === "") return ["This field is required."];
  const length = [...username].length;
  if (length > MAX_USERNAME_LENGTH) {
    return [`Ensure this value has at most ${MAX_USERNAME_LENGTH} characters (it has ${length}).`];
  }
  if (!USERNAME_PATTERN.test(username)) {
    return [
      "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
    ];
  }
  // Letters fonts draw as nothing (a Hangul filler alone): a name no reader could see.
  if (latinLookalike(username) === "") {
    return ["Enter a valid username. This value shows nothing: it needs a visible letter."];
  }
  return [];
}

/** Problems with a new password chosen by `username`. */
export function passwordErrors(password: string, username: string): string[] {
  if (password === "") return ["This field is required."];
  const errors: string[] = [];
  if (isTooSimilar(password, username)) errors.push("The password is too similar to the username.");
  if ([...password].length < MIN_PASSWORD_LENGTH) {
    errors.push(
      `This password is too short. It must contain at least ${MIN_PASSWORD_LENGTH} characters.`,
    );
  }
  if (COMMON_PASSWORDS.has(password.toLowerCase().trim())) {
    errors.push("This password is too common.");
  }
  if (/^[0-9]+$/.test(password)) errors.push("This password is entirely numeric.");
  return errors;
}

/**
 * Every problem with a sign-up form; the username is checked in its normalised form. `reserved`:
 * names no account may take, whatever their case (an app shows them as authors of its own: a
 * chat's "Anonymous" for visitors, say, which an account must not pass for).
 */
export function signUpErrors(input: SignUpInput, reserved: readonly string[] = []): SignUpErrors {
  const username = normalizeUsername(input.username);
  const key = lookalikeKey(username);
  const taken = reserved.some((name) => lookalikeKey(name) === key);
  const errors: SignUpErrors = {
    username: taken ? ["This username is reserved."] : usernameErrors(username),
    password1: [],
    password2: [],
  };
  // Compared with the username only once it is valid, as Django's form compares it with the
  // instance its valid fields built: an invalid one, 16,000 parts long, would cost the event
  // loop seconds for a form refused anyway.
  const checked = errors.username.length === 0 ? username : "";
  return { ...errors, ...newPasswordErrors(input.password1, input.password2, checked) };
}

/**
 * Problems with a new password typed twice by `username` (sign-up, a password change): the
 * password rules on the first, "required" or a mismatch on the second.
 */
export function newPasswordErrors(
  password1: string,
  password2: string,
  username: string,
): { password1: string[]; password2: string[] } {
  const errors = { password1: passwordErrors(password1, username), password2: [] as string[] };
  // Django's `ProhibitNullCharactersValidator`: a password hash pads its key with zeros, so
  // "pw" and "pw\0" would be one password.
  if (password1.includes("\0")) errors.password1.unshift(NULL_CHARACTERS);
  if (password2 === "") errors.password2.push("This field is required.");
  else if (password1 !== password2) errors.password2.push(PASSWORD_MISMATCH);
  return errors;
}

/** Django's message when the two passwords differ (with its typographic apostrophe). */
export const PASSWORD_MISMATCH = "The two password fields didn’t match.";

/** Django's message for a field holding a NUL character. */
export const NULL_CHARACTERS = "Null characters are not allowed.";

/** True when no field has an error. */
export function isValid(errors: SignUpErrors): boolean {
  return errors.username.length + errors.password1.length + errors.password2.length === 0;
}

/**
 * Django's `UserAttributeSimilarityValidator`: the password is compared with the username and
 * with each of its word-like parts by `SequenceMatcher.quick_ratio`. We also refuse a password
 * that contains the whole username (from three characters on), which that ratio lets through
 * for long passwords.
 */
export function isTooSimilar(password: string, username: string): boolean {
  const pw = password.toLowerCase();
  const name = username.toLowerCase();
  if (name === "") return false;
  if ([...name].length >= 3 && pw.includes(name)) return true;
  // The password is counted once, not once per part: the work grows with the two lengths
  // added, never multiplied (a form's fields are attacker-sized).
  const pwCounts = characterCounts(pw);
  const pwLength = [...pw].length;
  const parts = [...name.split(NON_WORD).filter(Boolean), name];
  return parts.some((part) => {
    const partLength = [...part].length;
    return !exceedsLengthRatio(pwLength, partLength) &&
      quickRatio(pwCounts, pwLength, part, partLength) >= MAX_SIMILARITY;
  });
}

// Django's shortcut: a value far shorter than the password cannot make it guessable.
function exceedsLengthRatio(pwLength: number, valueLength: number): boolean {
  return pwLength >= 10 * valueLength && valueLength < (MAX_SIMILARITY / 2) * pwLength;
}

function characterCounts(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const char of text) counts.set(char, (counts.get(char) ?? 0) + 1);
  return counts;
}

/**
 * Python's `SequenceMatcher.quick_ratio`: 2 * shared characters / total characters, where a
 * character is shared as many times as both hold it.
 */
function quickRatio(
  aCounts: Map<string, number>,
  aLength: number,
  b: string,
  bLength: number,
): number {
  let shared = 0;
  for (const [char, count] of characterCounts(b)) {
    shared += Math.min(count, aCounts.get(char) ?? 0);
  }
  const total = aLength + bLength;
  return total === 0 ? 1 : (2 * shared) / total;
}

// The most common passwords of at least eight characters (shorter ones fail the length rule).
const COMMON_PASSWORDS = new Set([
  "password",
  "password1",
  "password12",
  "password123",
  "password!",
  "passw0rd",
  "p@ssw0rd",
  "p@ssword",
  "qwertyui",
  "qwertyuiop",
  "qwerty12",
  "qwerty123",
  "qwerty1234",
  "1q2w3e4r",
  "1q2w3e4r5t",
  "1qaz2wsx",
  "zaq12wsx",
  "zaq1zaq1",
  "q1w2e3r4",
  "asdfghjk",
  "asdfghjkl",
  "asdfasdf",
  "zxcvbnm1",
  "zxcvbnm123",
  "abcd1234",
  "abc12345",
  "abc123456",
  "abcdefgh",
  "aaaaaaaa",
  "iloveyou",
  "iloveyou1",
  "iloveyou2",
  "sunshine",
  "sunshine1",
  "princess",
  "princess1",
  "football",
  "football1",
  "baseball",
  "basketball",
  "welcome1",
  "welcome123",
  "letmein1",
  "letmein123",
  "trustno1",
  "superman",
  "superman1",
  "starwars",
  "whatever",
  "dragon123",
  "monkey123",
  "michael1",
  "jennifer",
  "computer",
  "internet",
  "mustang1",
  "shadow123",
  "master123",
  "admin123",
  "administrator",
  "changeme",
  "changeme1",
  "secret123",
  "hello123",
  "freedom1",
  "charlie1",
  "batman123",
  "lovely123",
  "chocolate",
  "butterfly",
  "liverpool",
  "jordan23",
  "michelle",
  "danielle",
  "midnight",
  "blink182",
  "pokemon1",
  "samantha",
  "elizabeth",
  "maverick",
  "nicholas",
  "corvette",
  "mercedes",
  "victoria",
  "december",
  "november",
  "september",
  "alexander",
  "passport",
  "benjamin",
  "lakers24",
  "silver12",
  "snoopy12",
  "spiderman",
  "rockyou1",
  "test1234",
  "testtest",
  "letmeinnow",
]);
