// The room picker: Enter or the button goes to /chat/<room>/, the name percent-encoded so that
// spaces, slashes and any script survive the trip.

const MAX_ROOM_NAME = 100;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const form = document.getElementById("room-form");
const input = document.getElementById("room-name-input");
const hint = document.getElementById("room-name-hint");

/** Why `room` cannot be used, or `null` when it can. */
function problemWith(room) {
  if (room === "") return "Type the name of a room first.";
  // A browser turns /chat/../ into /: such a room could never be reached.
  if (room === "." || room === "..") return "“.” and “..” cannot be room names.";
  // A pasted half of an emoji: the server refuses it, and `encodeURIComponent` would throw.
  if (!room.isWellFormed()) return "Room names cannot contain broken characters.";
  // Counted as the server counts them: composed (NFC), so "é" typed as e and an accent is one;
  // as written when composing makes it longer (a few characters decompose: "क़" is two).
  const composed = [...room.normalize("NFC")].length;
  if (Math.min(composed, [...room].length) > MAX_ROOM_NAME) {
    return `Room names have at most ${MAX_ROOM_NAME} characters.`;
  }
  if (CONTROL.test(room)) return "Room names cannot contain control characters.";
  return null;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const room = input.value.trim();
  const problem = problemWith(room);
  if (problem !== null) {
    hint.textContent = problem;
    hint.hidden = false;
    input.setAttribute("aria-invalid", "true"); // and the hint describes it (aria-describedby)
    input.focus();
    return;
  }
  location.assign(`/chat/${encodeURIComponent(room)}/`);
});

input.addEventListener("input", () => {
  hint.hidden = true;
  input.removeAttribute("aria-invalid");
});
