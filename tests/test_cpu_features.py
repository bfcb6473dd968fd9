"""The CPU features oneDNN may use (`compression.cpu_features`): /proc/cpuinfo flags,
oneDNN's ONEDNN_MAX_CPU_ISA cap, unknown CPUs, and what int8 makes of them."""

import pytest

from keras_bert_impl.compression import cpu_features, onednn_int8

EPYC = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx avx2 fma\n"
SAPPHIRE_RAPIDS = (
    "model name\t: Intel(R) Xeon(R) Platinum 8480+\n"
    "flags\t\t: avx avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx_vnni "
    "avx512_bf16 amx_bf16 amx_tile amx_int8\n"
)
# AVX-512 without VNNI (Skylake-SP) and AVX2 with AVX-VNNI (Alder Lake).
SKYLAKE = "flags\t\t: avx2 avx512f avx512dq avx512bw avx512vl\n"
ALDER_LAKE = "flags\t\t: avx2 avx_vnni\n"


@pytest.mark.parametrize(
    "cpuinfo, features, levels",
    [
        (EPYC, {"avx2"}, 128),
        (SKYLAKE, {"avx2", "avx512f"}, 128),
        (ALDER_LAKE, {"avx2", "avx_vnni"}, 256),
        (SAPPHIRE_RAPIDS, set(cpu_features.FEATURES), 256),
    ],
)
def test_flags_give_the_features_and_the_int8_codes(cpuinfo, features, levels):
    detected = cpu_features.parse(cpuinfo, environ={})
    assert detected.features == features
    assert onednn_int8.activation_levels(detected) == levels
    assert detected.native_bfloat16 == ("avx512_bf16" in features)


@pytest.mark.parametrize(
    "cap, features",
    [
        ("AVX2", {"avx2"}),
        ("avx2", {"avx2"}),  # oneDNN takes any case
        ("AVX2_VNNI", {"avx2", "avx_vnni"}),
        ("AVX512_CORE", {"avx2", "avx512f"}),
        ("AVX512_CORE_VNNI", {"avx2", "avx512f", "avx512_vnni"}),
        ("AVX512_CORE_BF16", {"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}),
        ("AVX512_CORE_AMX", set(cpu_features.FEATURES)),
        ("SSE41", set()),
        ("ALL", set(cpu_features.FEATURES)),
        ("NOT_AN_ISA", set(cpu_features.FEATURES)),  # ignored, as oneDNN ignores it
    ],
)
def test_onednn_max_cpu_isa_caps_the_features(cap, features):
    detected = cpu_features.parse(SAPPHIRE_RAPIDS, {"ONEDNN_MAX_CPU_ISA": cap})
    assert detected.features == features
    named = f"ONEDNN_MAX_CPU_ISA={cap.upper()}" in detected.summary()
    assert named == (cap not in ("ALL", "NOT_AN_ISA"))


def test_an_avx512_machine_capped_at_avx2_quantizes_as_an_avx2_one():
    capped = cpu_features.parse(SAPPHIRE_RAPIDS, {"DNNL_MAX_CPU_ISA": "AVX2"})
    assert capped.features == {"avx2"} and onednn_int8.activation_levels(capped) == 128
    assert not capped.native_bfloat16
    # The newer name wins over the older one, as in oneDNN.
    both = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI", "DNNL_MAX_CPU_ISA": "AVX2"}
    assert cpu_features.parse(SAPPHIRE_RAPIDS, both).has("avx512_vnni")


def test_unknown_cpus_take_what_is_right_everywhere():
    for unknown in (
        cpu_features.parse("Features\t: fp asimd bf16\n", {}, machine="aarch64"),
        cpu_features.parse("", {}),
    ):
        assert not unknown.known and not unknown.has("avx2")
        assert onednn_int8.activation_levels(unknown) == 128
        assert "ISA features unknown" in unknown.summary()


def test_summary_is_one_line_naming_the_model_and_every_feature():
    line = cpu_features.parse(EPYC, {}).summary()
    assert line == (
        "AMD EPYC 7B13; avx2 (no avx512f avx512_vnni avx_vnni avx512_bf16 amx)"
    )
    this_cpu = cpu_features.summary()
    assert "\n" not in this_cpu and this_cpu == cpu_features.detect().summary()


def test_an_unknown_feature_name_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match="'avx512'; expected one of avx2, avx512f"):
        cpu_features.parse(EPYC, {}).has("avx512")
