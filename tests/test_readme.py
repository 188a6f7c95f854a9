import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)\n```", readme, re.DOTALL).group(1).strip()
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci_lines == [first_block]


def test_cpu_torch_is_pinned_in_the_install_path():
    pins = (ROOT / "requirements" / "cpu.txt").read_text()
    assert re.search(r"^torch==\d+\.\d+\.\d+$", pins, re.MULTILINE)
