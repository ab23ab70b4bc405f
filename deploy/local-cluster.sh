#!/usr/bin/env bash
# Starts, inspects and stops a multi-site Arca cluster of arca-node processes on 127.0.0.1.
#
#   deploy/local-cluster.sh start  [--sites 3] [--nodes-per-site 1] [--dir /tmp/arca-cluster]
#                                  [--bin target/release] [--base-port 7070] [--timeout 60] [--learners]
#   deploy/local-cluster.sh status [--dir /tmp/arca-cluster]
#   deploy/local-cluster.sh stop   [--dir /tmp/arca-cluster]
#
# Nodes are numbered 1..sites*nodes-per-site, site by site: nodes 1..M are site-1, M+1..2M site-2, ...
# Node i serves HTTP on 127.0.0.1:(base+10*i) and QUIC (UDP) on 127.0.0.1:(base+10*i+1), so with the
# default base node 1 is http 7080 / quic 7081, node 2 is 7090 / 7091, ... (a single node on the default
# 7070/7071 can keep running beside the cluster). Everything lives under --dir:
#
#   <dir>/nodes.tsv          id, site, http address, quic address of every node
#   <dir>/env                ARCA_SERVER and ARCA_TOKEN of node 1, for `source <dir>/env`
#   <dir>/node-<i>/data/     the node's --data-dir (admin.token, http.addr, cluster/, ...)
#   <dir>/node-<i>/node.log  its stdout and stderr
#   <dir>/node-<i>/node.pid  its process id
#
# Node 1 starts first, without --join: it creates the cluster (and its CA under data/cluster/). The
# script then asks node 1 for a join token and starts every other node with --join <node 1's QUIC
# address>, one at a time, each after the one before is serving, and promotes each from learner to voter
# (unless --learners) so that every node votes. `start` on a directory that already
# holds a cluster restarts its nodes from their data directories (a node that already has data/cluster/
# is started without --join). RUST_LOG is passed through (default info,openraft=warn).
set -euo pipefail

readonly DEFAULT_DIR=/tmp/arca-cluster
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly script_dir

usage() {
    cat <<EOF
usage: $(basename "$0") start  [--sites N] [--nodes-per-site M] [--dir DIR] [--bin DIR]
                               [--base-port P] [--timeout SECONDS] [--learners]
       $(basename "$0") status [--dir DIR]
       $(basename "$0") stop   [--dir DIR]

  --sites N            number of sites (default 3)
  --nodes-per-site M   nodes in each site (default 1)
  --dir DIR            where data, logs and pid files go (default $DEFAULT_DIR)
  --bin DIR            directory holding arca-node (and arca, if built)
                       (default: target/release of this repository)
  --base-port P        node i uses http P+10*i and quic P+10*i+1 (default 7070)
  --timeout SECONDS    how long to wait for each node to serve (default 60)
  --learners           leave the nodes that join as learners (default: promote each to voter)
EOF
}

die() {
    echo "local-cluster: $*" >&2
    exit 1
}

log() {
    echo "local-cluster: $*" >&2
}

# True when the pid names a running arca-node process (guards against stale pid files and reused pids).
is_arca_node() {
    local pid=$1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    local stat comm
    read -r stat comm < <(ps -o stat=,comm= -p "$pid" 2>/dev/null) || return 1
    # An exited process that nobody has reaped yet (a zombie) is not running.
    [[ $stat != Z* && $comm == arca-node* ]]
}

pid_of() {
    local pid_file=$1/node.pid
    [[ -f $pid_file ]] || return 1
    local pid
    pid=$(<"$pid_file")
    is_arca_node "$pid" || return 1
    echo "$pid"
}

# True when something accepts TCP connections on 127.0.0.1:port.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints the value of "token" from a JSON object on stdin.
json_token() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
    else
        sed -n 's/.*"token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p'
    fi
}

# Waits until the node in node_dir has written http.addr and admin.token and /healthz answers 200
# (the node knows a leader). Fails early when the process exits.
wait_for_node() {
    local node_dir=$1 http=$2 timeout=$3
    local data=$node_dir/data deadline=$((SECONDS + timeout)) pid
    pid=$(<"$node_dir/node.pid")
    while ((SECONDS < deadline)); do
        # kill -0 rather than is_arca_node: right after launch the process may still be nohup.
        if ! kill -0 "$pid" 2>/dev/null; then
            log "the node in $node_dir exited; last lines of $node_dir/node.log:"
            tail -n 30 "$node_dir/node.log" >&2 || true
            return 1
        fi
        if [[ -s $data/http.addr && -s $data/admin.token ]] &&
            curl -fsS -o /dev/null --max-time 2 "http://$http/healthz" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    log "the node in $node_dir did not serve http://$http/healthz within ${timeout}s; see $node_dir/node.log"
    return 1
}

# Starts one node in the background. Extra arguments go to arca-node; ARCA_JOIN_TOKEN goes through the
# environment (not the command line, where `ps` would show it).
launch() {
    local bin=$1 node_dir=$2 join_token=$3
    shift 3
    mkdir -p "$node_dir/data"
    # A stale http.addr from an earlier run would make wait_for_node return too early.
    rm -f "$node_dir/data/http.addr"
    (
        # Only what this script chooses: no ARCA_* settings inherited from the caller's shell.
        unset ARCA_JOIN_TOKEN ARCA_ADVERTISE_HTTP ARCA_ADVERTISE_QUIC ARCA_ROLE
        if [[ -n $join_token ]]; then
            export ARCA_JOIN_TOKEN=$join_token
        fi
        export RUST_LOG=${RUST_LOG:-info,openraft=warn}
        exec nohup "$bin/arca-node" --data-dir "$node_dir/data" "$@" </dev/null >>"$node_dir/node.log" 2>&1
    ) &
    echo $! >"$node_dir/node.pid"
}

cmd_start() {
    local sites=3 per_site=1 dir=$DEFAULT_DIR bin="" base=7070 timeout=60 promote=1
    while (($#)); do
        case $1 in
        --sites) sites=${2:?--sites needs a value}; shift 2 ;;
        --nodes-per-site) per_site=${2:?--nodes-per-site needs a value}; shift 2 ;;
        --dir) dir=${2:?--dir needs a value}; shift 2 ;;
        --bin) bin=${2:?--bin needs a value}; shift 2 ;;
        --base-port) base=${2:?--base-port needs a value}; shift 2 ;;
        --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
        --learners) promote=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
        esac
    done
    local n
    for n in "$sites" "$per_site" "$base" "$timeout"; do
        [[ $n =~ ^[1-9][0-9]*$ ]] || die "not a positive number: $n"
    done
    local total=$((sites * per_site))
    ((base + 10 * total + 1 <= 65535)) || die "--base-port $base leaves no room for $total nodes"

    if [[ -z $bin ]]; then
        bin=$script_dir/../target/release
    fi
    [[ -d $bin ]] || die "no such directory: $bin (build with: cargo build --release -p arca-node -p arca-client)"
    bin=$(cd "$bin" && pwd)
    [[ -x $bin/arca-node ]] || die "no executable $bin/arca-node (build with: cargo build --release -p arca-node)"
    command -v curl >/dev/null 2>&1 || die "curl is needed"

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)

    # Refuse to start over running nodes or a cluster of another shape.
    local id node_dir
    for node_dir in "$dir"/node-*; do
        [[ -d $node_dir ]] || continue
        if pid_of "$node_dir" >/dev/null; then
            die "a node is already running from $node_dir; run: $0 stop --dir $dir"
        fi
    done
    local layout
    layout=$(
        echo "# id	site	http	quic"
        for ((id = 1; id <= total; id++)); do
            printf '%s\tsite-%s\t127.0.0.1:%s\t127.0.0.1:%s\n' \
                "$id" $(((id - 1) / per_site + 1)) $((base + 10 * id)) $((base + 10 * id + 1))
        done
    )
    # The nodes of an existing cluster know each other by these addresses: a restart must keep them.
    if [[ -f $dir/nodes.tsv && $(<"$dir/nodes.tsv") != "$layout" ]]; then
        die "$dir holds a cluster of another shape (see $dir/nodes.tsv); start it with the same" \
            "--sites, --nodes-per-site and --base-port, or use another --dir"
    fi
    for ((id = 1; id <= total; id++)); do
        if port_in_use $((base + 10 * id)); then
            die "port $((base + 10 * id)) (http of node $id) is in use; choose another --base-port"
        fi
    done

    echo "$layout" >"$dir/nodes.tsv"
    echo "$bin" >"$dir/bin"

    # Phase 1: node 1 (which creates the cluster on first start) and every node that is already a member
    # (its data directory holds cluster/), all at once: restarted voters need each other for a quorum.
    # Phase 2: the nodes that still have to join, one at a time.
    local site http quic join_quic="" admin_token="" join_token="" server="" started=() joiners=()
    while IFS=$'\t' read -r -u 3 id site http quic; do
        [[ $id == '#'* ]] && continue
        node_dir=$dir/node-$id
        local args=(--node-id "$id" --site "$site" --http "$http" --quic "$quic")
        if ((id == 1)); then
            join_quic=$quic
            server=http://$http
            if [[ -d $node_dir/data/cluster ]]; then
                log "restarting node 1 ($site, http $http, quic $quic) from its data directory"
            else
                log "starting node 1 ($site, http $http, quic $quic): it creates the cluster"
            fi
            launch "$bin" "$node_dir" "" "${args[@]}"
            started+=("$id $http")
        elif [[ -d $node_dir/data/cluster ]]; then
            log "restarting node $id ($site, http $http, quic $quic) from its data directory"
            launch "$bin" "$node_dir" "" "${args[@]}"
            started+=("$id $http")
        else
            joiners+=("$id $site $http $quic")
        fi
    done 3<"$dir/nodes.tsv"
    local node
    for node in "${started[@]}"; do
        read -r id http <<<"$node"
        wait_for_node "$dir/node-$id" "$http" "$timeout" || die "node $id did not start (stop the others: $0 stop --dir $dir)"
    done
    admin_token=$(<"$dir/node-1/data/admin.token")
    printf 'export ARCA_SERVER=%s\nexport ARCA_TOKEN=%s\n' "$server" "$admin_token" >"$dir/env"
    chmod 600 "$dir/env"

    for node in ${joiners[@]+"${joiners[@]}"}; do
        read -r id site http quic <<<"$node"
        node_dir=$dir/node-$id
        if [[ -z $join_token ]]; then
            local answer
            answer=$(curl -fsS -X POST -H "Authorization: Bearer $admin_token" \
                -H 'Content-Type: application/json' \
                "$server/api/v1/cluster/join-tokens" -d '{"ttl_seconds":3600}') ||
                die "could not create a join token at $server"
            join_token=$(json_token <<<"$answer")
            [[ -n $join_token ]] || die "no token in the answer of $server/api/v1/cluster/join-tokens: $answer"
        fi
        log "starting node $id ($site, http $http, quic $quic), joining $join_quic"
        launch "$bin" "$node_dir" "$join_token" \
            --node-id "$id" --site "$site" --http "$http" --quic "$quic" --join "$join_quic"
        wait_for_node "$node_dir" "$http" "$timeout" || die "node $id did not start (stop the others: $0 stop --dir $dir)"
        # A node joins as a learner; make it a voter.
        if ((promote)); then
            log "promoting node $id to voter"
            curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $admin_token" \
                "$server/api/v1/cluster/nodes/$id/promote" ||
                die "could not promote node $id to voter at $server"
        fi
    done

    local arca=arca
    if [[ -x $bin/arca ]]; then
        arca=$bin/arca
    fi
    cat <<EOF

Arca cluster of $total node(s) in $sites site(s) is running; state, logs and pid files are in $dir.
$(sed 's/^# //' "$dir/nodes.tsv" | { column -t -s $'\t' 2>/dev/null || cat; })

Use it (every node serves the whole API; the admin token is node 1's):
  source $dir/env            # sets ARCA_SERVER=$server and ARCA_TOKEN
  $arca cluster status
EOF
    if ((total > 1)); then
        echo "  $arca --server http://127.0.0.1:$((base + 20)) cluster status   # ask node 2"
    fi
    cat <<EOF

Status and stop:
  $0 status --dir $dir
  $0 stop --dir $dir
EOF
    if [[ ! -x $bin/arca ]]; then
        echo "(the arca CLI is not in $bin: cargo build --release -p arca-client)"
    fi
}

cmd_status() {
    local dir=$DEFAULT_DIR
    while (($#)); do
        case $1 in
        --dir) dir=${2:?--dir needs a value}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
        esac
    done
    [[ -f $dir/nodes.tsv ]] || die "no cluster in $dir (no nodes.tsv)"
    local id site http quic pid health server=""
    printf '%-4s %-8s %-16s %-16s %-8s %s\n' ID SITE HTTP QUIC PID HEALTH
    while IFS=$'\t' read -r id site http quic; do
        [[ $id == '#'* ]] && continue
        if pid=$(pid_of "$dir/node-$id"); then
            health=$(curl -sS --max-time 2 "http://$http/healthz" 2>&1) || true
            [[ -n $server ]] || server=http://$http
        else
            pid=-
            health="not running"
        fi
        printf '%-4s %-8s %-16s %-16s %-8s %s\n' "$id" "$site" "$http" "$quic" "$pid" "$health"
    done <"$dir/nodes.tsv"

    [[ -f $dir/env && -n $server ]] || return 0
    local ARCA_SERVER="" ARCA_TOKEN=""
    # shellcheck source=/dev/null
    source "$dir/env"
    # Any running node answers for the whole cluster; node 1 is preferred (it is first in nodes.tsv).
    ARCA_SERVER=$server
    echo
    local bin=""
    [[ -f $dir/bin ]] && bin=$(<"$dir/bin")
    if [[ -n $bin && -x $bin/arca ]]; then
        "$bin/arca" --server "$ARCA_SERVER" --token "$ARCA_TOKEN" cluster status ||
            log "arca cluster status failed against $ARCA_SERVER"
    else
        local answer
        if answer=$(curl -fsS --max-time 5 -H "Authorization: Bearer $ARCA_TOKEN" \
            "$ARCA_SERVER/api/v1/cluster"); then
            if command -v python3 >/dev/null 2>&1; then
                python3 -m json.tool <<<"$answer"
            else
                echo "$answer"
            fi
        else
            log "GET $ARCA_SERVER/api/v1/cluster failed"
        fi
    fi
}

cmd_stop() {
    local dir=$DEFAULT_DIR
    while (($#)); do
        case $1 in
        --dir) dir=${2:?--dir needs a value}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
        esac
    done
    [[ -d $dir ]] || die "no such directory: $dir"
    local node_dir pid pids=()
    for node_dir in "$dir"/node-*; do
        [[ -d $node_dir ]] || continue
        if pid=$(pid_of "$node_dir"); then
            log "stopping ${node_dir##*/} (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$node_dir/node.pid"
    done
    if ((${#pids[@]} == 0)); then
        log "no node is running in $dir"
        return 0
    fi
    local deadline=$((SECONDS + 10)) alive
    while :; do
        alive=()
        for pid in "${pids[@]}"; do
            if is_arca_node "$pid"; then
                alive+=("$pid")
            fi
        done
        ((${#alive[@]} == 0)) && break
        if ((SECONDS >= deadline)); then
            log "still running after 10 s, killing: ${alive[*]}"
            kill -KILL "${alive[@]}" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    log "stopped ${#pids[@]} node(s); data and logs stay in $dir"
}

main() {
    (($#)) || { usage >&2; exit 2; }
    local command=$1
    shift
    case $command in
    start) cmd_start "$@" ;;
    status) cmd_status "$@" ;;
    stop) cmd_stop "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
    esac
}

main "$@"
