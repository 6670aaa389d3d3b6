"""Side-by-side loopback benchmark of fxpd and Debian's vsftpd (Python 3 stdlib only).

Run it through tests/bench/run.sh, which installs the clients and servers, builds fxpd and
then calls this driver as root. It is NOT part of the test suite and makes no absolute
claims: every figure is reported beside vsftpd's figure from the same round, and the
headline is the median over rounds of the per-round ratio fxpd/vsftpd. With --pure-ftpd,
Debian's pure-ftpd joins the transfer workloads as a third server (on 127.0.0.6) and a
second ratio column, fxpd/pure-ftpd, is printed.

Rules followed (see PERFORMANCE.md in the shared notes): both servers on loopback only
(vsftpd on 127.0.0.1, fxpd on 127.0.0.2), data on tmpfs, server CPU from a per-server
cgroup v2 `cpu.stat` (which counts vsftpd's forked session processes), transfer rates over
the data phase only (curl's time_total - time_pretransfer), small files inside one lftp
session after login with FEAT off, memory as PSS + page tables with sessions minus
without, per session; rounds rotate the order of the servers.

Everything is bounded: every subprocess and network wait has a time-out, every loop a
count or a deadline. Processes started here are stopped by pid and the temporary tree on
tmpfs is removed on exit (also on Ctrl-C / SIGTERM).
"""
