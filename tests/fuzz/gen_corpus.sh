#!/usr/bin/env bash
# Regenerate the committed seed corpora of the fuzz targets (docs/fuzzing.md):
#   envelope, router  real bus messages, written by fuzz_gen_corpus (built
#                     with the same builders and encoder the daemons use)
#   config            config/*.json, the test configs' shapes, hostbootd
#                     seccomp variants
#   manifest          examples/*/manifest.json and variants using every field
# Usage: tests/fuzz/gen_corpus.sh [build dir]   (default: build; configured
# and fuzz_gen_corpus built there if needed). Output: tests/fuzz/corpus/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
corpus=$here/corpus

[[ -f "$build/CMakeCache.txt" ]] || cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" --target fuzz_gen_corpus >/dev/null

rm -rf "$corpus/envelope" "$corpus/router" "$corpus/config" "$corpus/manifest"
mkdir -p "$corpus/config" "$corpus/manifest"
"$build/tests/fuzz/fuzz_gen_corpus" "$corpus"

# ---- config ----
cp "$root/config/platformd.json" "$corpus/config/platformd.json"
cp "$root/config/hostbootd.json" "$corpus/config/hostbootd.json"
printf '{}' >"$corpus/config/empty_object.json"
cat >"$corpus/config/hostbootd_seccomp.json" <<'JSON'
{"name":"fuzz","hosts":{"seccomp":{"enabled":true,"deny":["ptrace","mount","bpf"]},
 "limits":{"as_bytes":0,"nofile":64}},
 "runtimes":[{"language":"c","version":"1","path":"/bin/true"},
             {"language":"python","version":"3.11","path":"/usr/bin/python3"}]}
JSON
cat >"$corpus/config/hostbootd_seccomp_unknown.json" <<'JSON'
{"hosts":{"seccomp":{"deny":["no_such_call"]}}}
JSON
cat >"$corpus/config/platformd_small.json" <<'JSON'
{"bus":{"endpoint":"tcp://127.0.0.1:7700","max_msg_size":1024},
 "heartbeat":{"interval_ms":200,"miss":5},"http":{"address":"127.0.0.1","port":7780},
 "log":{"level":"debug"},"state":{"dir":"/tmp/x"}}
JSON
cat >"$corpus/config/wrong_types.json" <<'JSON'
{"bus":{"endpoint":7700,"max_msg_size":"big"},"runtimes":[{"language":"C!"}],"nope":null}
JSON

# ---- manifest ----
for m in "$root"/examples/*/manifest.json; do
  d=$(basename "$(dirname "$m")")
  cp "$m" "$corpus/manifest/example_$d.json"
done
cat >"$corpus/manifest/every_field.json" <<'JSON'
{"id":"notes","version":"1.2.3-rc.1+build.5","language":"python","runtime_version":"3.11",
 "entry":"lib/plugin.so","host_mode":"powerSave",
 "permissions":{"http":["api.example.com:443","*.example.org:*"],"files":true,"db":true},
 "abilities":[{"kind":"task","name":"nightly","spec":"0 3 * * 1-5"},
              {"kind":"service","name":"web","spec":"18080/health"}],
 "description":"Every manifest field.",
 "config_schema":{"type":"object","properties":{"greeting_name":{"type":"string"}}},
 "default_config":{"greeting_name":"world"}}
JSON
cat >"$corpus/manifest/entry_symlink_out.json" <<'JSON'
{"id":"esc","version":"1.0.0","language":"c","runtime_version":"1","entry":"outside.so"}
JSON
cat >"$corpus/manifest/entry_dotdot.json" <<'JSON'
{"id":"esc","version":"1.0.0","language":"c","runtime_version":"1","entry":"lib/../../x"}
JSON
cat >"$corpus/manifest/entry_symlink_in.json" <<'JSON'
{"id":"in","version":"0.0.1","language":"c","runtime_version":"1","entry":"inside.so",
 "host_mode":"dev"}
JSON

echo "gen_corpus: $(find "$corpus" -type f | wc -l) files in $corpus"
