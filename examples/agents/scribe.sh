#!/bin/sh
# The demo's stand-in for a real agent. seq-runner gives it one step's instruction as its last
# argument (never through a shell); it "does" the step by writing the Markdown file the
# instruction names and says so. STEP_ID and STEP_ATTEMPT come from seq-runner.
prompt=$1
out=$(printf '%s\n' "$prompt" | grep -oE '[A-Za-z0-9_][A-Za-z0-9_./-]*\.md' | tail -n 1)
if [ -z "$out" ]; then
  echo "the instruction names no .md file to write" >&2
  exit 3
fi
case $out in
  /* | *..*) echo "refusing to write outside the workspace: $out" >&2; exit 3 ;;
esac
mkdir -p "$(dirname "$out")"
{
  printf '# %s\n\n' "$STEP_ID"
  printf 'Written by the demo agent (attempt %s) for this instruction:\n\n> %s\n' "$STEP_ATTEMPT" "$prompt"
} > "$out"
echo "wrote $out"
