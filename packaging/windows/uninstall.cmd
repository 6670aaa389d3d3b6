@echo off
rem fxpd for Windows: remove the fxpd service and the program. From an elevated prompt:
rem     uninstall.cmd            stops and removes the service (with its registry key) and
rem                              %ProgramFiles%\fxpd; keeps %ProgramData%\fxpd (config, users, root, logs)
rem     uninstall.cmd /purge     also deletes the config, the users file and the logs, as the
rem                              Debian package's purge does; the FTP root (users' files) stays
setlocal EnableExtensions
set "BIN=%ProgramFiles%\fxpd"
set "EXE=%ProgramFiles%\fxpd\fxpd.exe"
set "DATA=%ProgramData%\fxpd"
set "PURGE="
if /i "%~1"=="/purge" set "PURGE=1"
if not "%~1"=="" if not defined PURGE goto usage
if "%ProgramData%"=="" goto no_env
if "%ProgramFiles%"=="" goto no_env

if not exist "%EXE%" goto no_program
"%EXE%" service status >nul 2>&1
if errorlevel 1 goto service_gone
rem Stops the service (running transfers finish first), then removes it.
"%EXE%" service uninstall
if errorlevel 1 goto failed
goto remove_program
:service_gone
echo service fxpd is not installed
:remove_program
del /f /q "%EXE%"
if errorlevel 1 goto failed
if exist "%EXE%" goto failed
rmdir "%BIN%" 2>nul
echo removed %BIN%
goto data

:no_program
echo %EXE% is not there: nothing to remove but data
:data
if defined PURGE goto purge
echo kept %DATA% (config, users, FTP root, logs): uninstall.cmd /purge deletes all but the root
exit /b 0

:purge
if exist "%DATA%\fxpd.toml" del /f /q "%DATA%\fxpd.toml"
if exist "%DATA%\users.toml" del /f /q "%DATA%\users.toml"
if exist "%DATA%\logs" rmdir /s /q "%DATA%\logs"
rmdir "%DATA%" 2>nul
echo purged the config, the users file and the logs; the FTP root %DATA%\root stays
exit /b 0

:usage
echo usage: uninstall.cmd [/purge]
exit /b 2
:no_env
echo uninstall.cmd: %%ProgramData%% or %%ProgramFiles%% is not set
exit /b 1
:failed
echo uninstall.cmd: the step above failed: run it from an elevated prompt (Run as administrator)
exit /b 1
