/*
 * bcryptprimitives.dll shim for running Rust programs under Wine 8.
 *
 * Rust's standard library (1.78 and later) and getrandom import ProcessPrng from
 * bcryptprimitives.dll. Wine 8 has no such DLL, so every Rust .exe fails to load under it
 * (exit code 53; WINEDEBUG=err+all names the missing DLL). This shim exports ProcessPrng and
 * fills the buffer with RtlGenRandom (advapi32's SystemFunction036), which Wine implements.
 * It is only ever placed next to the .exe in tests/windows/run.sh, never shipped.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32
 */
#include <windows.h>

/* RtlGenRandom; the SDK headers only declare it under that name with special macros. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Same contract as Windows 10's ProcessPrng: fill `data` with `len` random bytes; TRUE. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
