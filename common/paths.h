/*
 * Where the software the rig drives is installed, found in one place:
 *
 *   SoftHSM2, OpenSC   PKCS#11 modules registered with p11-kit (Debian's
 *                      packages drop /usr/share/p11-kit/modules/softhsm2
 *                      .module and opensc-pkcs11.module), asked through
 *                      p11-kit's own API, so a module moved by its package
 *                      or registered by the user (~/.config/pkcs11/modules)
 *                      is found where p11-kit finds it.
 *   vpcd               vsmartcard's reader driver, which installs into
 *                      pcsc-lite's driver folder (pkg-config --variable=
 *                      usbdropdir libpcsclite, asked by the Makefile) under
 *                      serial/: it is a serial-style driver named by a
 *                      reader.conf, not a USB bundle. On Debian 12:
 *                      usbdropdir /usr/lib/pcsc/drivers (ifd-ccid.bundle),
 *                      the driver /usr/lib/pcsc/drivers/serial/libifdvpcd.so;
 *                      serialconfdir is /etc/reader.conf.d, the system's
 *                      reader list, which the rig never touches (its pcscd
 *                      reads a reader.conf.d of its run folder).
 *
 * The interposer (emulators/p11shim) cannot ask p11-kit at run time: p11-kit
 * and GnuTLS load it while holding p11-kit's own lock. Its default module
 * is SoftHSM2 as p11-kit's registry named it when the rig was built
 * (TR_BUILD_SOFTHSM2_MODULE, from the Makefile); the unit test
 * test_provinces.c checks that it is still what p11-kit says.
 */
#ifndef TR_COMMON_PATHS_H
#define TR_COMMON_PATHS_H

#include <stddef.h>

typedef enum tr_path_id {
	TR_PATH_SOFTHSM2,  /* libsofthsm2.so (package softhsm2) */
	TR_PATH_OPENSC,    /* opensc-pkcs11.so (package opensc-pkcs11) */
	TR_PATH_VPCD,      /* libifdvpcd.so (package vsmartcard-vpcd) */
} tr_path_id;

/*
 * The installed file, absolute and with symlinks resolved, found once per
 * process. TR_EDEPEND when it is not installed, the message naming the
 * package to install.
 */
int tr_paths_find(tr_path_id id, const char **out);

/*
 * The same for callers whose next step (dlopen, access, open) fails anyway
 * when the file is missing: then a name that is no file and says what to
 * install ("opensc-pkcs11.so (not installed: install the package opensc)"),
 * so that step's own error names the package.
 */
const char *tr_paths_get(tr_path_id id);

/*
 * A PKCS#11 module given by a user: a path (made absolute), or the name of
 * a module registered with p11-kit ("softhsm2"; "opensc" for opensc-pkcs11:
 * a prefix up to a dash). TR_EDEPEND naming what was asked for.
 */
int tr_paths_module(const char *arg, char *path, size_t len);

#endif
