#!/usr/bin/env bash
# The GPU figures issue 12 asks for, sized for a lent machine's budget: the default checks
# end within 510 s (one device call may run 600 s); first_step, the longest, is for a
# second call:
#
#     bash benchmarks/gpu_checks.sh OUT_DIR [DEVICE]
#     CHECKS=first_step bash benchmarks/gpu_checks.sh OUT_DIR
#
# run from the repository root, with the package importable (here: PYTHONPATH=src; on a
# lent device machine its python3 holds torch and the rest). Each check has a time limit
# of its own, so that one that hangs does not take the others with it, and writes its
# output to OUT_DIR/<check>.txt, whose last line is the script's JSON. A check that fails
# or runs out of time is named at the end and makes the exit status 1; the others still run.
#
#   optimizer_step   CS Adam n=5 against fused Adam, and the generic path, 10M in 10 tensors
#   training_step    the run's step: eager, fused, compiled with CUDA graphs, CS Adam
#   experiment       whole runs against the bare loop (digits: nothing to download)
#   device_check     no host synchronisation per step; compiled == eager; graph == no graph
#   first_step       a new process's first step, cold and warm, 1, 6 and 40 tensors
#   long_chains      optimizer_step for chains of 10, 16 and 32 levels beside their floors,
#                    float32 and bfloat16 state, exact, Euler and the generic path (issue 25;
#                    compiles a kernel per length: a call of its own)
#
# Tried on the CPU (PYTHON=.venv/bin/python, DEVICE cpu): the mechanics hold (a check over
# its limit is killed and named); not yet run on a GPU.
set -uo pipefail
declare -A limits

out=${1:?usage: bash benchmarks/gpu_checks.sh OUT_DIR [DEVICE]}
device=${2:-cuda}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"

failed=()
check() {  # [script=FILE] check NAME SECONDS ARGS...: benchmarks/FILE.py (default NAME) under its time limit
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit} s)"
    local start=$SECONDS
    timeout "$limit" "$python" "benchmarks/${script:-$name}.py" "$@" 2>&1 | tee "$out/$name.txt" | tail -n 12
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - start)) s"
    [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
}

"$python" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')" \
    | tee "$out/device.txt"
limits=([optimizer_step]=120 [training_step]=75 [experiment]=240 [device_check]=75 [first_step]=540
    [long_chains]=540)
for name in ${CHECKS:-optimizer_step training_step experiment device_check}; do
    case $name in
    experiment) check experiment "${limits[$name]}" --dataset digits --repeats 3 --fixed-malloc-only --device "$device" ;;
    optimizer_step) check optimizer_step "${limits[$name]}" --device "$device" --lengths 5 ;;
    long_chains) script=optimizer_step check long_chains "${limits[$name]}" --device "$device" --lengths 10,16,32 ;;
    training_step | device_check | first_step) check "$name" "${limits[$name]}" --device "$device" ;;
    *)
        echo "unknown check $name: choose from ${!limits[*]}"
        failed+=("$name (unknown)")
        ;;
    esac
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}"
    exit 1
fi
echo "all checks ran"
