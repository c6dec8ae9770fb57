<#
.SYNOPSIS
    Scalp Radar on Windows: set up, then start the embedded radar (or run the tests).

.DESCRIPTION
    Installs uv into the chosen Python, syncs the dependencies into .venv\ (uv.lock), then runs
    `manage.py radar`: SQLite, in-process channel layer and workers, the dashboard on
    http://127.0.0.1:8000/ (no Redis, PostgreSQL or Celery needed). With -Test it runs the test
    suite instead. Every other argument is passed on to manage.py radar (or to pytest).

    Python: the first of `py -3.12`, `py -3`, `python` that is 3.12 or newer (.python-version
    asks for 3.12); uv is pointed at that same interpreter (UV_PYTHON) unless UV_PYTHON is set.

.EXAMPLE
    .\dev.ps1
    .\dev.ps1 --replay --speed 60
    .\dev.ps1 -Test
    .\dev.ps1 -Test tests\trading -x
    dev.bat -Test
#>
param(
    [switch]$Test
)

$ErrorActionPreference = 'Stop'
Set-Location -LiteralPath $PSScriptRoot

function Test-Python {
    # Is `$Exe $ExeArgs` a Python 3.12+? Quietly false when it is missing or older. (Windows
    # PowerShell 5.1 turns a native command's redirected stderr into errors, which 'Stop' would
    # make fatal: the probe runs with 'Continue'.)
    param([string]$Exe, [string[]]$ExeArgs)
    $previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        & $Exe @ExeArgs -c "import sys; sys.exit(sys.version_info < (3, 12))" *> $null
        return ($LASTEXITCODE -eq 0)
    } catch {
        return $false
    } finally {
        $ErrorActionPreference = $previous
    }
}

function Invoke-Step {
    # A native command; stop with its exit code when it fails.
    param([string]$What, [scriptblock]$Command)
    & $Command
    if ($LASTEXITCODE -ne 0) {
        Write-Host "dev.ps1: $What failed (exit code $LASTEXITCODE)" -ForegroundColor Red
        exit $LASTEXITCODE
    }
}

$Python = $null
foreach ($candidate in @(@('py', '-3.12'), @('py', '-3'), @('python'))) {
    $exe, $rest = $candidate
    if (Test-Python -Exe $exe -ExeArgs @($rest | Where-Object { $_ })) {
        $Python = $exe
        $PythonArgs = @($rest | Where-Object { $_ })
        break
    }
}
if (-not $Python) {
    Write-Host 'dev.ps1: Python 3.12 or newer is needed (python.org, with the "py launcher").' -ForegroundColor Red
    exit 1
}
if (-not $env:UV_PYTHON) {
    $env:UV_PYTHON = (& $Python @PythonArgs -c "import sys; print(sys.executable)")
}
Write-Host "Python: $env:UV_PYTHON"

Invoke-Step 'installing uv' { & $Python @PythonArgs -m pip install --quiet uv }
Invoke-Step 'uv sync' { & $Python @PythonArgs -m uv sync }

if ($Test) {
    & $Python @PythonArgs -m uv run pytest @args
} else {
    & $Python @PythonArgs -m uv run manage.py radar @args
}
exit $LASTEXITCODE
