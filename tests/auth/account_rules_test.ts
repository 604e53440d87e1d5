import { assert, assertEquals, assertFalse, assertLess } from "@std/assert";
import {
  isTooSimilar,
  isValid,
  normalizeUsername,
  passwordErrors,
  signUpErrors,
  usernameErrors,
  usernameKey,
} from "../../auth/account_rules.ts";

Deno.test("usernames of letters (any script), digits and @.+-_ are accepted", () => {
  for (const name of ["ada", "Ada.Lovelace", "a+b@c-d_e", "José", "東京太郎", "Ωmega", "x", "7"]) {
    assertEquals(usernameErrors(name), [], name);
  }
});

Deno.test("usernames with spaces, markup or punctuation are refused", () => {
  for (const name of ["ada lovelace", "<img src=x onerror=alert(1)>", "a/b", "a'b", "a\nb", "😀"]) {
    assertEquals(usernameErrors(name).length, 1, name);
  }
  assertEquals(usernameErrors(""), ["This field is required."]);
  // Hangul fillers are letters to Unicode, and fonts draw them as nothing.
  for (const invisible of ["\u3164", "\u3164\u3164", "\u115f\u1160"]) {
    assertEquals(usernameErrors(invisible), [
      "Enter a valid username. This value shows nothing: it needs a visible letter.",
    ]);
  }
  assertEquals(usernameErrors("bob\u3164"), [], "a filler beside letters shows them");
});

Deno.test("a username is at most 150 characters, counted as characters", () => {
  assertEquals(usernameErrors("a".repeat(150)), []);
  assertEquals(usernameErrors("é".repeat(150)), []);
  assertEquals(usernameErrors("a".repeat(151)), [
    "Ensure this value has at most 150 characters (it has 151).",
  ]);
});

Deno.test("usernames are unique regardless of case and Unicode form", () => {
  assertEquals(usernameKey("Ada"), usernameKey("ADA"));
  // "ﬁ" (one ligature character) and the fullwidth "Ａ" fold to plain letters under NFKC.
  assertEquals(usernameKey("ﬁona"), usernameKey("FIONA"));
  assertEquals(normalizeUsername("Ａda"), "Ada");
  assert(usernameKey("ada") !== usernameKey("adb"));
  // Letters whose lower case alone keeps apart names that differ only by case.
  assertEquals(usernameKey("straße"), usernameKey("STRASSE"));
  assertEquals(usernameKey("STRA\u1e9eE"), usernameKey("straße"), "the capital sharp s");
  assertEquals(usernameKey("νίκος.π"), usernameKey("ΝΊΚΟΣ.Π"));
});

Deno.test("a password shorter than 8 characters is refused", () => {
  assertEquals(passwordErrors("k9#Lm2!", "ada"), [
    "This password is too short. It must contain at least 8 characters.",
  ]);
  assertEquals(passwordErrors("k9#Lm2!q", "ada"), []);
});

Deno.test("an all-digit password is refused", () => {
  assert(passwordErrors("48151623", "ada").includes("This password is entirely numeric."));
});

Deno.test("a common password is refused", () => {
  assert(passwordErrors("Password123", "ada").includes("This password is too common."));
  assert(passwordErrors("iloveyou", "ada").includes("This password is too common."));
});

Deno.test("a password too similar to the username is refused", () => {
  assert(isTooSimilar("lovelace", "ada.lovelace"), "a part of the username");
  assert(isTooSimilar("ADALOVELACE1", "ada_lovelace"), "the username, other case");
  assert(isTooSimilar("margaret2024!!", "margaret"), "the username inside the password");
  assertFalse(isTooSimilar("quiet river stone", "ada"));
  assertEquals(passwordErrors("lovelace12", "lovelace"), [
    "The password is too similar to the username.",
  ]);
});

Deno.test("the two passwords must match; errors sit beside their field", () => {
  const errors = signUpErrors({
    username: "ada lovelace",
    password1: "quiet river stone",
    password2: "quiet river stones",
  });
  assertEquals(errors.username.length, 1);
  assertEquals(errors.password1, []);
  assertEquals(errors.password2, ["The two password fields didn’t match."]);
  assertFalse(isValid(errors));
  assert(isValid(signUpErrors({
    username: "ada",
    password1: "quiet river stone",
    password2: "quiet river stone",
  })));
});

Deno.test("a reserved name is refused when written with look-alike letters from another script", () => {
  const reserved = ["Anonymous", "Server", "Dice"];
  const usernameOf = (username: string) =>
    signUpErrors({ username, password1: "", password2: "" }, reserved).username;
  // A Cyrillic "А", a Cyrillic "Ѕ" and "е", a Cyrillic "і", a Greek "Ο" and "ι", all-Cyrillic.
  for (
    const lookalike of [
      "\u0410nonymous",
      "\u0405\u0435rver",
      "D\u0456ce",
      "An\u039fnymous",
      "D\u03b9ce",
      "\u0405\u0415RV\u0415R",
      "Ser\u0475er",
      "SER\u0474ER",
      "D\u04c0CE",
      // A Cherokee "Ꭰ" (its capital A, drawn as D), "Ꮩ" and a Latin alpha; a Coptic "Ⲟ".
      "\u13a0ice",
      "SER\u13d9ER",
      "\u0251nonymous",
      "Anonym\u2c9eus",
      // Drawn as a capital I: the Coptic "Ⲓ" and the Latin iota "Ɩ", read as the palochka is.
      "D\u2c92CE",
      "D\u0196CE",
    ]
  ) {
    assertEquals(usernameOf(lookalike), ["This username is reserved."], lookalike);
  }
  // Other Cyrillic and Greek names are names like any.
  assertEquals(usernameOf("Сергей"), []);
  assertEquals(usernameOf("Νίκος"), []);
  assertEquals(usernameOf("ᏣᎳᎩ"), []); // "Tsalagi", Cherokee's own name
  assertEquals(usernameOf("Servers"), []);
});

Deno.test("a username of 30,000 combining marks costs about what a plain one of that size costs", () => {
  const time = (name: string) => {
    const start = performance.now();
    usernameKey(name);
    assertEquals(usernameErrors(normalizeUsername(name)).length > 0, true);
    return performance.now() - start;
  };
  const plain = time("\u00e9".repeat(30_001));
  // Normalised, marks of two classes cost time quadratic in their number: about a second here.
  const marks = time("a" + "\u0301\u0316".repeat(15_000));
  assertLess(marks, Math.max(plain, 2) * 20, `${marks} ms against ${plain} ms`);
});

Deno.test("a sign-up form with a long invalid username and a long password costs what a valid one costs", () => {
  const password = "x".repeat(31_000);
  const time = (username: string) => {
    const start = performance.now();
    signUpErrors({ username, password1: password, password2: password });
    return performance.now() - start;
  };
  time("warm-up");
  // 75 word parts, the most a valid username of 150 characters holds.
  const valid = time("a.".repeat(75));
  // 16,000 parts, each compared with the whole password before: seconds on the event loop.
  const invalid = time("a.".repeat(16_000));
  assertLess(invalid, Math.max(valid, 2) * 10, `${invalid} ms against ${valid} ms`);
});

Deno.test("the similarity check counts a character as shared as often as both hold it", () => {
  // Django's quick_ratio: "aab" and "abb" share a and b once each: 2 * 2 / 6 < 0.7.
  assertFalse(isTooSimilar("aabxyz", "abb"));
  // An invalid username is not compared, as Django compares the valid fields only.
  const errors = signUpErrors({ username: "lovelace!", password1: "Lovelace!", password2: "x" });
  assertEquals(errors.password1, []);
  assertEquals(passwordErrors("Lovelace!", "lovelace"), [
    "The password is too similar to the username.",
  ]);
});
