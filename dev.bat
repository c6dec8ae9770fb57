@echo off
rem Scalp Radar on Windows: dev.ps1 (set up, then start the embedded radar; -Test runs the
rem tests), without changing PowerShell's execution policy for anything else. Arguments are
rem passed on: dev.bat --replay --speed 60, dev.bat -Test
powershell -NoProfile -ExecutionPolicy Bypass -File "%~dp0dev.ps1" %*
exit /b %ERRORLEVEL%
