"""busbar-sim read and written with mbpoll, the command-line Modbus master."""

import re
import subprocess
import time


def mbpoll(sim, *args):
    out = subprocess.run(["mbpoll", "-m", "tcp", "-p", str(sim.port), "-0", "-1", "-o", "2", *args, "127.0.0.1"],
                         capture_output=True, text=True, timeout=20)
    return out.returncode, out.stdout + out.stderr


def values(text):
    return {int(a): int(v) for a, v in re.findall(r"^\[(\d+)\]:\s+(-?\d+)", text, re.M)}


def test_mbpoll_reads_socomec_32bit_values(sim):
    rc, out = mbpoll(sim, "-a", "2", "-t", "4:int", "-B", "-r", "50520", "-c", "4")
    assert rc == 0, out
    v = values(out)
    assert 20700 <= v[50520] <= 25300, out  # V1 in V/100
    assert 4950 <= v[50526] <= 5050, out  # frequency in Hz/100


def test_mbpoll_reads_atys_block_and_writes_a_command(sim):
    rc, out = mbpoll(sim, "-a", "1", "-t", "4", "-r", "20480", "-c", "10")
    assert rc == 0, out
    v = values(out)
    assert v[20481] == 16 and v[20482] == 2, out
    # mbpoll writes the values given after the host: command 2 = transfer to position 0.
    out = subprocess.run(["mbpoll", "-m", "tcp", "-p", str(sim.port), "-0", "-a", "1", "-t", "4", "-r", "20784",
                          "127.0.0.1", "2"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stdout + out.stderr
    deadline = time.time() + 5
    pos = None
    while time.time() < deadline:
        rc, text = mbpoll(sim, "-a", "1", "-t", "4", "-r", "20482", "-c", "1")
        pos = values(text).get(20482)
        if pos == 1:
            break
        time.sleep(0.2)
    assert pos == 1, "position 0"


def test_mbpoll_gets_exception_02_for_unmapped(sim):
    rc, out = mbpoll(sim, "-a", "2", "-t", "4", "-r", "1000", "-c", "2")
    assert rc != 0 or "Illegal data address" in out, out
    assert "Illegal data address" in out, out
