"""The x86 instructions oneDNN may use on this CPU, read once per process.

What decides how fast (and, for int8, how exactly) `with_precision`'s precisions run:
AVX2, AVX-512F, the int8 dot products (AVX512_VNNI, AVX_VNNI), AVX512_BF16 and AMX.
Linux lists them in /proc/cpuinfo's `flags`; elsewhere (or on other architectures) they
are unknown, and callers take the choice that is right on any CPU.

oneDNN can be told to stop at a smaller instruction set with `ONEDNN_MAX_CPU_ISA` (or
its older name `DNNL_MAX_CPU_ISA`; any case, e.g. `AVX2`; unknown values are ignored).
TensorFlow's oneDNN honours it: `ONEDNN_VERBOSE=1` then names the capped ISA
(`isa:Intel AVX` under `AVX` on an AVX2 CPU). A feature above the cap counts as absent
here too, so that an AVX-512 machine can run what an AVX2-only one runs.
"""

import functools
import os
import platform

FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx")

# Bits of oneDNN's `dnnl_cpu_isa_t`: each ISA is the set of bits it needs, and an ISA
# runs under a cap when all its bits are in the cap's.
_ISA_BITS = {
    "SSE41": 0x1,
    "AVX": 0x3,
    "AVX2": 0x7,
    "AVX2_VNNI": 0xF,
    "AVX2_VNNI_2": 0x1F,
    "AVX512_CORE": 0x27,
    "AVX512_CORE_VNNI": 0x67,
    "AVX512_CORE_BF16": 0xE7,
    "AVX10_1_512": 0x1EF,
    "AVX512_CORE_FP16": 0x1EF,
    "AVX10_1_512_AMX": 0xFEF,
    "AVX512_CORE_AMX": 0xFEF,
    "AVX10_1_512_AMX_FP16": 0x1FEF,
    "AVX512_CORE_AMX_FP16": 0x1FEF,
}
# Our feature: (its /proc/cpuinfo flags, all needed; the oneDNN bit that carries it).
# oneDNN's AVX-512 ISAs start at AVX512_CORE: F with BW, VL and DQ.
_FLAGS = {
    "avx2": (("avx2",), 0x4),
    "avx512f": (("avx512f", "avx512bw", "avx512vl", "avx512dq"), 0x20),
    "avx512_vnni": (("avx512_vnni",), 0x40),
    "avx_vnni": (("avx_vnni",), 0x8),
    "avx512_bf16": (("avx512_bf16",), 0x80),
    "amx": (("amx_tile", "amx_bf16", "amx_int8"), 0xE00),
}


class CpuFeatures:
    """The features of `FEATURES` oneDNN may use: `features` (a frozenset), or None
    where they are unknown; `model` (the CPU's name or the machine type) and `isa_cap`
    (`ONEDNN_MAX_CPU_ISA`, upper-cased, "" if unset or ignored)."""

    def __init__(self, features, model, isa_cap=""):
        self.features = None if features is None else frozenset(features)
        self.model = model
        self.isa_cap = isa_cap

    def has(self, feature):
        """Whether oneDNN may use `feature` (False where unknown)."""
        if feature not in FEATURES:
            raise ValueError(
                f"Unknown CPU feature {feature!r}; expected one of "
                f"{', '.join(FEATURES)}."
            )
        return self.features is not None and feature in self.features

    @property
    def known(self):
        return self.features is not None

    @property
    def int8_dot_product(self):
        """VNNI (AVX-512 or AVX): uint8 x int8 products summed in int32."""
        return self.has("avx512_vnni") or self.has("avx_vnni")

    @property
    def native_bfloat16(self):
        return self.has("avx512_bf16") or self.has("amx")

    def summary(self):
        """One line for reports, e.g. `AMD EPYC 7B13; avx2 (no avx512f, ...)`."""
        if self.features is None:
            flags = "ISA features unknown"
        else:
            present = [f for f in FEATURES if f in self.features]
            absent = [f for f in FEATURES if f not in self.features]
            flags = " ".join(present) or "none of " + " ".join(FEATURES)
            if present and absent:
                flags += f" (no {' '.join(absent)})"
        cap = f"; ONEDNN_MAX_CPU_ISA={self.isa_cap}" if self.isa_cap else ""
        return f"{self.model}; {flags}{cap}"


def isa_cap(environ=None):
    """oneDNN's cap (upper-case name) from the environment, "" for none. Values oneDNN
    does not know are ignored, as oneDNN ignores them."""
    environ = os.environ if environ is None else environ
    value = environ.get("ONEDNN_MAX_CPU_ISA", environ.get("DNNL_MAX_CPU_ISA", ""))
    value = value.strip().upper()
    return value if value in _ISA_BITS else ""


def parse(cpuinfo, environ=None, machine="x86_64"):
    """`CpuFeatures` from the text of /proc/cpuinfo and the environment's cap."""
    flags, model = set(), machine
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "flags" and not flags:
            flags = set(value.split())
        elif key == "model name" and model == machine:
            model = value.strip()
    if machine.lower() not in ("x86_64", "amd64") or not flags:
        return CpuFeatures(None, model)
    cap = isa_cap(environ)
    allowed = _ISA_BITS[cap] if cap else ~0
    features = [
        name
        for name, (needed, bit) in _FLAGS.items()
        if flags.issuperset(needed) and bit & allowed == bit
    ]
    return CpuFeatures(features, model, cap)


@functools.lru_cache(maxsize=None)
def detect():
    """This CPU's `CpuFeatures`, read once (oneDNN reads its cap once per process)."""
    machine = platform.machine() or "unknown machine"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpuinfo = f.read()
    except OSError:
        return CpuFeatures(None, machine)
    return parse(cpuinfo, machine=machine)


def summary():
    """`detect().summary()`: the line benchmark reports carry."""
    return detect().summary()


__all__ = ["FEATURES", "CpuFeatures", "detect", "isa_cap", "parse", "summary"]
