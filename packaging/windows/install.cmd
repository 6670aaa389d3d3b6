@echo off
rem fxpd for Windows: install (or update) the fxpd service. From an elevated prompt (right-click
rem Command Prompt, "Run as administrator"), in the folder unzipped from
rem fxpd-VERSION-x86_64-windows.zip:
rem     install.cmd
rem It applies the same hardened defaults as the Debian package (FXP off, anonymous off):
rem   %ProgramFiles%\fxpd\fxpd.exe          the program (replaced on update, the service stopped first)
rem   %ProgramData%\fxpd\fxpd.toml          the hardened config; an existing one is never overwritten
rem   %ProgramData%\fxpd\users.toml         the users file, empty (kept if it exists)
rem   %ProgramData%\fxpd\root               the FTP root
rem   %ProgramData%\fxpd\logs               the W3C command log (exYYMMDD.log)
rem   %ProgramData%\fxpd is made readable by SYSTEM and Administrators only (the users file
rem   holds password hashes) when this script creates it.
rem   the service fxpd (automatic start, restart on failure; `fxpd.exe service install` also sets
rem   EnablePortAttack=0 and EnablePASVTheft=0 where absent), then started.
rem Running it again updates fxpd.exe and restarts the service; config, users and data are kept.
rem uninstall.cmd removes the service and the program.
setlocal EnableExtensions
set "SRC=%~dp0"
set "BIN=%ProgramFiles%\fxpd"
set "EXE=%ProgramFiles%\fxpd\fxpd.exe"
set "DATA=%ProgramData%\fxpd"
set "CONFIG=%ProgramData%\fxpd\fxpd.toml"
set "USERS=%ProgramData%\fxpd\users.toml"

if not exist "%SRC%fxpd.exe" goto no_exe
if not exist "%SRC%fxpd.toml" goto no_exe
if "%ProgramData%"=="" goto no_env
if "%ProgramFiles%"=="" goto no_env

rem ---- elevation: only an administrator may write under %ProgramFiles%.
if not exist "%BIN%" mkdir "%BIN%" 2>nul
type nul > "%BIN%\install-check.tmp" 2>nul
if not exist "%BIN%\install-check.tmp" goto not_admin
del "%BIN%\install-check.tmp"

rem ---- data: config, users file, root, logs (existing files are kept).
if exist "%DATA%" goto data_exists
mkdir "%DATA%"
if errorlevel 1 goto failed
rem SECURITY: users.toml holds password hashes: SYSTEM (the service) and Administrators only.
icacls "%DATA%" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F >nul 2>&1
if errorlevel 1 goto no_acl
:data_exists
if exist "%CONFIG%" goto config_kept
copy /y "%SRC%fxpd.toml" "%CONFIG%" >nul
if errorlevel 1 goto failed
echo config:   %CONFIG% (hardened defaults: FXP off, anonymous off)
goto config_done
:config_kept
echo config:   %CONFIG% kept (the shipped one is %SRC%fxpd.toml)
:config_done
if exist "%USERS%" goto users_done
> "%USERS%" echo # fxpd users: add them with 'fxpd.exe user add NAME --users %USERS%'.
if errorlevel 1 goto failed
:users_done
echo users:    %USERS%
if not exist "%DATA%\root" mkdir "%DATA%\root"
if not exist "%DATA%\logs" mkdir "%DATA%\logs"
echo root:     %DATA%\root

rem ---- the program and the service: an update stops the service before replacing fxpd.exe.
"%SRC%fxpd.exe" service status >nul 2>&1
if errorlevel 1 goto fresh
echo service fxpd is installed: updating %EXE%
"%EXE%" service stop
if errorlevel 1 goto failed
copy /y "%SRC%fxpd.exe" "%EXE%" >nul
if errorlevel 1 goto failed
goto start

:fresh
copy /y "%SRC%fxpd.exe" "%EXE%" >nul
if errorlevel 1 goto failed
"%EXE%" service install --config "%CONFIG%"
if errorlevel 1 goto failed

:start
echo program:  %EXE%
"%EXE%" service start
if errorlevel 1 goto failed

echo.
echo fxpd is running as the service fxpd. Next steps:
echo  1. Add a user (fxpd.exe asks for the password; --write allows uploads), then reload:
echo       mkdir "%DATA%\root\alice"
echo       "%EXE%" user add alice --users "%USERS%" --home alice --write
echo       "%EXE%" service reload
echo  2. Open the firewall: the control port and the passive ports of the shipped config
echo     (change them here if you change listen or [passive] ports in fxpd.toml):
echo       netsh advfirewall firewall add rule name="fxpd control" dir=in action=allow protocol=TCP localport=21 program="%EXE%"
echo       netsh advfirewall firewall add rule name="fxpd passive" dir=in action=allow protocol=TCP localport=50000-50999 program="%EXE%"
echo  3. Connect: ftp://alice@THIS-SERVER/  (curl, FileZilla, WinSCP, or: ftp THIS-SERVER)
echo  Settings: %CONFIG% (then "%EXE%" service reload); "%EXE%" config check --config "%CONFIG%"
echo  shows every value and where it comes from. Behind NAT set [passive] address.
exit /b 0

:no_exe
echo install.cmd: fxpd.exe and fxpd.toml must be next to this script (unzip the whole zip first)
exit /b 1
:no_env
echo install.cmd: %%ProgramData%% or %%ProgramFiles%% is not set
exit /b 1
:not_admin
echo install.cmd: cannot write to %BIN%: run it from an elevated prompt (Run as administrator)
exit /b 1
:no_acl
rem Fail closed: no users file in a folder every local user can read; the next run tries again.
rmdir "%DATA%"
echo install.cmd: icacls could not restrict %DATA% to SYSTEM and Administrators; nothing installed
exit /b 1
:failed
echo install.cmd: the step above failed; nothing was removed. Fix it and run install.cmd again.
exit /b 1
