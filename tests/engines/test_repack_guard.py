"""llama.cpp's weight repacking: off exactly where it is known to crash, never a crash anywhere."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

from abstractcore.core.errors import ModelLoadError
from abstractcore.engines import llamacpp_native
from abstractcore.engines.llamacpp_native import build_features, cpu_flags, repack_is_safe, use_extra_buffers

# llama_print_system_info() of llama-cpp-python 0.3.36 built with -march=native on a Xeon with AMX
AMX_BUILD = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | "
    "OPENMP = 1 | REPACK = 1 | "
)
AVX2_BUILD = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | REPACK = 1 | "
AMX_CPU = frozenset({"avx2", "avx512f", "avx512_vnni", "amx_bf16", "amx_tile", "amx_int8"})
AVX512_CPU = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})


def fake_llama_cpp(system_info: str, *, has_field: bool = True) -> Any:
    fields = [("n_gpu_layers", None), ("use_extra_bufts", None)] if has_field else [("n_gpu_layers", None)]
    params = type("llama_model_params", (), {"_fields_": fields})
    return types.SimpleNamespace(
        llama_print_system_info=lambda: system_info.encode(), llama_model_params=params
    )


def test_the_build_features_are_read_from_the_system_info() -> None:
    features = build_features(fake_llama_cpp(AMX_BUILD))
    assert {"AVX2", "AVX512", "AVX512_VNNI", "AMX_INT8", "REPACK", "SSE3"} <= features
    assert "AMX_INT8" not in build_features(fake_llama_cpp(AVX2_BUILD))


def test_repacking_is_unsafe_only_for_an_amx_build_on_an_amx_cpu() -> None:
    amx, avx2 = build_features(fake_llama_cpp(AMX_BUILD)), build_features(fake_llama_cpp(AVX2_BUILD))
    assert not repack_is_safe(amx, AMX_CPU)
    assert repack_is_safe(avx2, AMX_CPU)  # a portable build has no AMX kernels
    assert repack_is_safe(amx, AVX512_CPU)  # AMX kernels never run on a CPU without AMX
    assert repack_is_safe(frozenset(), frozenset())


def test_the_default_turns_repacking_off_where_it_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llamacpp_native, "cpu_flags", lambda: AMX_CPU)
    assert use_extra_buffers(fake_llama_cpp(AMX_BUILD), None) is False
    assert use_extra_buffers(fake_llama_cpp(AVX2_BUILD), None) is True
    assert use_extra_buffers(fake_llama_cpp(AMX_BUILD), True) is True  # the user insists


def test_a_build_that_cannot_turn_it_off_is_a_typed_error_saying_how_to_reinstall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(llamacpp_native, "cpu_flags", lambda: AMX_CPU)
    with pytest.raises(ModelLoadError) as caught:
        use_extra_buffers(fake_llama_cpp(AMX_BUILD, has_field=False), None)
    assert "GGML_NATIVE=OFF" in str(caught.value) and "repack=True" in str(caught.value)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 amx_tile\nbugs\t\t: spectre\n")
    if sys.platform.startswith("linux"):
        assert cpu_flags(info) == {"fpu", "sse", "avx2", "amx_tile"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_repack_must_be_a_bool() -> None:
    from abstractcore import ConfigurationError, create_llm

    with pytest.raises(ConfigurationError, match="repack"):
        create_llm("huggingface", repack="no")


LONG_PROMPT = " ".join(f"Item {i} is a small red box that sits on a wooden shelf." for i in range(20))


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 4])
def test_a_200_token_prompt_runs_in_process_without_a_signal(gguf_path: Path, parallel: int) -> None:
    """The crash of item 0: llama_decode on a prompt of more than a few dozen tokens, native build."""
    script = textwrap.dedent(
        f"""
        from abstractcore import create_llm
        llm = create_llm("huggingface", model={str(gguf_path)!r}, parallel={parallel}, max_tokens=8,
                         temperature=0)
        r = llm.generate({LONG_PROMPT!r} + " How many boxes are there?")
        assert r.usage.input_tokens >= 200, r.usage
        print("tokens", r.usage.input_tokens, "ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode} (negative: killed by signal)\n{done.stderr[-3000:]}"
    assert done.stdout.strip().endswith("ok")


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 4])
def test_repack_false_reaches_llama_cpp_model_params(gguf_path: Path, parallel: int) -> None:
    import llama_cpp

    from abstractcore import create_llm

    seen: list[bool] = []
    load = llama_cpp.llama_model_load_from_file

    def recording_load(path: bytes, params: Any) -> Any:
        seen.append(bool(params.use_extra_bufts))
        return load(path, params)

    # llama_cpp.Llama loads through the bindings module; the batch engine through the package
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(llama_cpp, "llama_model_load_from_file", recording_load)
        patch.setattr(llama_cpp.llama_cpp, "llama_model_load_from_file", recording_load)
        for repack in (False, True):
            llm = create_llm(
                "huggingface", model=str(gguf_path), parallel=parallel, repack=repack, max_tokens=2
            )
            assert llm.generate("Hi").usage is not None
            llm.unload()
    assert seen == [False, True]
