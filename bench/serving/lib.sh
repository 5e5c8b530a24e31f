# Shared by the serving benchmarks: a Steward server on a fresh data directory with
# retail/credit 1.0.0 (logreg.onnx) promoted to staging, and optionally a canary and a
# shadow beside it.
# usage (sourced): steward_up BIN DATA_DIR PORT CANARY_BP SHADOW_BP [steward.toml lines]
#   sets steward_model (the staging model's OIP URL) and steward_pid; fails when staging does
#   not serve what was set up within 20 s.
steward_up() {
  local bin=$1 data=$2 port=$3 canary_bp=$4 shadow_bp=$5 toml=${6:-}
  local url=http://127.0.0.1:$port field='import json, sys; print(json.load(sys.stdin)[sys.argv[1]])'
  "$bin" init --data-dir "$data" >/dev/null
  [ -z "$toml" ] || printf '%s\n' "$toml" >> "$data/steward.toml"
  "$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" >"$data/serve.log" 2>&1 &
  steward_pid=$!
  for _ in $(seq 1 50); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.2; done
  local admin alice dave
  admin=$(cat "$data/admin.token")
  STEWARD_URL=$url STEWARD_TOKEN=$admin "$bin" units create retail >/dev/null
  STEWARD_URL=$url STEWARD_TOKEN=$admin "$bin" users create alice >/dev/null
  STEWARD_URL=$url STEWARD_TOKEN=$admin "$bin" users grant alice data_scientist --scope retail >/dev/null
  STEWARD_URL=$url STEWARD_TOKEN=$admin "$bin" users create dave >/dev/null
  STEWARD_URL=$url STEWARD_TOKEN=$admin "$bin" users grant dave mlops_engineer --scope retail >/dev/null
  alice=$(STEWARD_URL=$url STEWARD_TOKEN=$admin "$bin" tokens create alice -o json | python3 -c "$field" token)
  dave=$(STEWARD_URL=$url STEWARD_TOKEN=$admin "$bin" tokens create dave -o json | python3 -c "$field" token)
  STEWARD_URL=$url STEWARD_TOKEN=$alice "$bin" models create retail/credit --category tabular_classification --risk-class minimal --tier 3 >/dev/null
  local digests=() version file dir
  for version in 1.0.0:logreg.onnx 1.1.0:logreg.onnx 1.2.0:mlp.onnx; do
    file=${version#*:} version=${version%%:*} dir=$data/../model-$port-$version
    mkdir -p "$dir"
    cp "crates/steward-gateway/test_data/$file" "$dir/model.onnx"
    printf 'version: %s\nlicence: Apache-2.0\nintended_use: Score credit applications.\nmodel_card: {description: Credit scoring fixture., markdown: "# Credit"}\n' "$version" > "$dir/steward.yaml"
    digests+=("$(STEWARD_URL=$url STEWARD_TOKEN=$alice "$bin" versions register retail/credit --dir "$dir" -o json | python3 -c "$field" digest)")
  done
  STEWARD_URL=$url STEWARD_TOKEN=$dave "$bin" promote "${digests[0]}" --to staging --reason "bench" -o json | grep -q '"state": "applied"'
  local want="['1.0.0']"
  if [ "$canary_bp" -gt 0 ] || [ "$shadow_bp" -gt 0 ]; then
    curl -sf -X PUT -H "authorization: Bearer $dave" -H 'content-type: application/json' \
      -d "{\"canary\": \"${digests[1]}\", \"canary_weight_bp\": $canary_bp, \"shadow\": \"${digests[2]}\", \"shadow_share_bp\": $shadow_bp, \"reason\": \"bench\"}" \
      "$url/api/v1/models/retail/credit/routing/staging" >/dev/null
    want="['1.0.0', '1.1.0']"
  fi
  local model=$url/env/staging/v2/models/retail:credit
  local got=''
  for _ in $(seq 1 80); do
    got=$(curl -sf "$model" | python3 -c "$field" versions 2>/dev/null || true)
    [ "$got" = "$want" ] && break
    sleep 0.25
  done
  [ "$got" = "$want" ] || { echo "staging serves ${got:-nothing}, want $want; see $data/serve.log" >&2; return 1; }
  steward_model=$model
}
