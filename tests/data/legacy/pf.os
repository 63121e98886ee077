# pf.os signatures that fwknopd 1.9.12 printed for the repository's os_sample.pkts
# (os-fingerprint.json), in pf.os form, plus one MTU-window line that 1.x skips.
%8192:128:1:48:M*,N,N,S:	Windows:2000:SP2+:Windows 2000 SP2, XP SP1 (seldom 98 4.10.2222)
%8192:128:1:48:M*,N,N,S:	Windows:XP:SP1:Windows 2000 SP2, XP SP1 (seldom 98 4.10.2222)
*:128:1:48:M*,N,N,S:	@Windows:2000::Windows XP/2000
*:128:1:48:M*,N,N,S:	@Windows:XP::Windows XP/2000
*:128:1:52:M*,N,W0,N,N,S:	@Windows:2000:RFC1323:Windows XP/2000 (RFC1323 no tstamp)
*:128:1:52:M*,N,W0,N,N,S:	@Windows:XP:RFC1323:Windows XP/2000 (RFC1323 no tstamp)
*:128:1:64:M*,N,W*,N,N,T0,N,N,S:	@Windows:XP:RFC1323:Windows XP (RFC1323, w+)
32767:128:1:52:M*,N,W0,N,N,S:	Windows:98::Windows 98
57344:64:1:44:M*:	FreeBSD:4.6-4.8:noRFC1323:FreeBSD 4.6-4.8 (no RFC1323)
65535:128:1:48:M*,N,N,S:	Windows:2000:SP4:Windows 2000 SP4, XP SP1
65535:128:1:48:M*,N,N,S:	Windows:XP:SP1:Windows 2000 SP4, XP SP1
65535:64:1:60:M*,N,W1,N,N,T:	FreeBSD:4.7-4.9::FreeBSD 4.7-5.1
65535:64:1:60:M*,N,W1,N,N,T:	FreeBSD:5.0-5.1::FreeBSD 4.7-5.1
8192:128:1:44:M*:	Windows:NT:4.0:Windows NT 4.0 (older)
8192:64:1:44:M1460:	Eagle:::Eagle Secure Gateway
S22:64:1:60:M*,S,T,N,W0:	Linux:2.2::Linux 2.2
S45:128:1:48:M*,N,N,S:	Windows:2000:SP4:Windows 2000 SP4, XP SP 1
S45:128:1:48:M*,N,N,S:	Windows:XP:SP1:Windows 2000 SP4, XP SP 1
S4:64:1:60:M*,S,T,N,W0:	Linux:2.4::Linux 2.4/2.6
S4:64:1:60:M*,S,T,N,W0:	Linux:2.6::Linux 2.4/2.6
T4:64:1:60:M*,S,T,N,W0:	Linux:2.4:mtu:Linux 2.4 (MTU window, skipped)
