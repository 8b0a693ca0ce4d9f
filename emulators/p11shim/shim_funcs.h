/*
 * The PKCS#11 v2.40 function list, in the order of p11-kit's pkcs11.h (68
 * functions): the one list the interposer's enum, names, forwarding
 * wrappers and function table are generated from (X-macro).
 *
 *   OWN(name)   a function with semantics of its own, shim_<name> in shim.c
 *   FWD(name, target, (params), (args), in, out)
 *               plain forwarding through shim_call_begin/_end
 *               (shim_forward.c): target is NONE, SLOT(x) or SESSION(x),
 *               what faults and presence apply to; in and out are the
 *               sizes the trace records (OUT(p): *p when p is not NULL).
 *
 * A FWD line's params are checked against pkcs11.h where the function table
 * is filled: a wrong prototype does not compile.
 */
#ifndef TR_P11SHIM_FUNCS_H
#define TR_P11SHIM_FUNCS_H

#define SHIM_FUNCS(OWN, FWD) \
	OWN(C_Initialize) \
	OWN(C_Finalize) \
	FWD(C_GetInfo, NONE,\
	    (CK_INFO *info),\
	    (info),\
	    0, 0) \
	OWN(C_GetFunctionList) \
	OWN(C_GetSlotList) \
	OWN(C_GetSlotInfo) \
	OWN(C_GetTokenInfo) \
	FWD(C_GetMechanismList, SLOT(slot_id),\
	    (CK_SLOT_ID slot_id, CK_MECHANISM_TYPE *mechanism_list, unsigned long *count),\
	    (slot_id, mechanism_list, count),\
	    0, OUT(count)) \
	FWD(C_GetMechanismInfo, SLOT(slot_id),\
	    (CK_SLOT_ID slot_id, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info),\
	    (slot_id, type, info),\
	    0, 0) \
	OWN(C_InitToken) \
	OWN(C_InitPIN) \
	OWN(C_SetPIN) \
	OWN(C_OpenSession) \
	OWN(C_CloseSession) \
	OWN(C_CloseAllSessions) \
	FWD(C_GetSessionInfo, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_SESSION_INFO *info),\
	    (session, info),\
	    0, 0) \
	FWD(C_GetOperationState, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *operation_state, unsigned long *operation_state_len),\
	    (session, operation_state, operation_state_len),\
	    0, OUT(operation_state_len)) \
	FWD(C_SetOperationState, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *operation_state, unsigned long operation_state_len, CK_OBJECT_HANDLE encryption_key, CK_OBJECT_HANDLE authentiation_key),\
	    (session, operation_state, operation_state_len, encryption_key, authentiation_key),\
	    operation_state_len, 0) \
	OWN(C_Login) \
	FWD(C_Logout, SESSION(session),\
	    (CK_SESSION_HANDLE session),\
	    (session),\
	    0, 0) \
	FWD(C_CreateObject, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_ATTRIBUTE *templ, unsigned long count, CK_OBJECT_HANDLE *object),\
	    (session, templ, count, object),\
	    count, 0) \
	FWD(C_CopyObject, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ, unsigned long count, CK_OBJECT_HANDLE *new_object),\
	    (session, object, templ, count, new_object),\
	    count, 0) \
	FWD(C_DestroyObject, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object),\
	    (session, object),\
	    0, 0) \
	FWD(C_GetObjectSize, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, unsigned long *size),\
	    (session, object, size),\
	    0, OUT(size)) \
	FWD(C_GetAttributeValue, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ, unsigned long count),\
	    (session, object, templ, count),\
	    count, 0) \
	FWD(C_SetAttributeValue, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ, unsigned long count),\
	    (session, object, templ, count),\
	    count, 0) \
	FWD(C_FindObjectsInit, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_ATTRIBUTE *templ, unsigned long count),\
	    (session, templ, count),\
	    count, 0) \
	FWD(C_FindObjects, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *object, unsigned long max_object_count, unsigned long *object_count),\
	    (session, object, max_object_count, object_count),\
	    max_object_count, OUT(object_count)) \
	FWD(C_FindObjectsFinal, SESSION(session),\
	    (CK_SESSION_HANDLE session),\
	    (session),\
	    0, 0) \
	FWD(C_EncryptInit, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key),\
	    (session, mechanism, key),\
	    0, 0) \
	FWD(C_Encrypt, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *encrypted_data, unsigned long *encrypted_data_len),\
	    (session, data, data_len, encrypted_data, encrypted_data_len),\
	    data_len, OUT(encrypted_data_len)) \
	FWD(C_EncryptUpdate, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len, unsigned char *encrypted_part, unsigned long *encrypted_part_len),\
	    (session, part, part_len, encrypted_part, encrypted_part_len),\
	    part_len, OUT(encrypted_part_len)) \
	FWD(C_EncryptFinal, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *last_encrypted_part, unsigned long *last_encrypted_part_len),\
	    (session, last_encrypted_part, last_encrypted_part_len),\
	    0, OUT(last_encrypted_part_len)) \
	FWD(C_DecryptInit, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key),\
	    (session, mechanism, key),\
	    0, 0) \
	FWD(C_Decrypt, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *encrypted_data, unsigned long encrypted_data_len, unsigned char *data, unsigned long *data_len),\
	    (session, encrypted_data, encrypted_data_len, data, data_len),\
	    encrypted_data_len, OUT(data_len)) \
	FWD(C_DecryptUpdate, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *encrypted_part, unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len),\
	    (session, encrypted_part, encrypted_part_len, part, part_len),\
	    encrypted_part_len, OUT(part_len)) \
	FWD(C_DecryptFinal, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *last_part, unsigned long *last_part_len),\
	    (session, last_part, last_part_len),\
	    0, OUT(last_part_len)) \
	FWD(C_DigestInit, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism),\
	    (session, mechanism),\
	    0, 0) \
	FWD(C_Digest, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *digest, unsigned long *digest_len),\
	    (session, data, data_len, digest, digest_len),\
	    data_len, OUT(digest_len)) \
	FWD(C_DigestUpdate, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len),\
	    (session, part, part_len),\
	    part_len, 0) \
	FWD(C_DigestKey, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key),\
	    (session, key),\
	    0, 0) \
	FWD(C_DigestFinal, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *digest, unsigned long *digest_len),\
	    (session, digest, digest_len),\
	    0, OUT(digest_len)) \
	FWD(C_SignInit, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key),\
	    (session, mechanism, key),\
	    0, 0) \
	FWD(C_Sign, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *signature, unsigned long *signature_len),\
	    (session, data, data_len, signature, signature_len),\
	    data_len, OUT(signature_len)) \
	FWD(C_SignUpdate, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len),\
	    (session, part, part_len),\
	    part_len, 0) \
	FWD(C_SignFinal, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *signature, unsigned long *signature_len),\
	    (session, signature, signature_len),\
	    0, OUT(signature_len)) \
	FWD(C_SignRecoverInit, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key),\
	    (session, mechanism, key),\
	    0, 0) \
	FWD(C_SignRecover, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *signature, unsigned long *signature_len),\
	    (session, data, data_len, signature, signature_len),\
	    data_len, OUT(signature_len)) \
	FWD(C_VerifyInit, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key),\
	    (session, mechanism, key),\
	    0, 0) \
	FWD(C_Verify, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *signature, unsigned long signature_len),\
	    (session, data, data_len, signature, signature_len),\
	    data_len, 0) \
	FWD(C_VerifyUpdate, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len),\
	    (session, part, part_len),\
	    part_len, 0) \
	FWD(C_VerifyFinal, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *signature, unsigned long signature_len),\
	    (session, signature, signature_len),\
	    signature_len, 0) \
	FWD(C_VerifyRecoverInit, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key),\
	    (session, mechanism, key),\
	    0, 0) \
	FWD(C_VerifyRecover, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *signature, unsigned long signature_len, unsigned char *data, unsigned long *data_len),\
	    (session, signature, signature_len, data, data_len),\
	    signature_len, OUT(data_len)) \
	FWD(C_DigestEncryptUpdate, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len, unsigned char *encrypted_part, unsigned long *encrypted_part_len),\
	    (session, part, part_len, encrypted_part, encrypted_part_len),\
	    part_len, OUT(encrypted_part_len)) \
	FWD(C_DecryptDigestUpdate, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *encrypted_part, unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len),\
	    (session, encrypted_part, encrypted_part_len, part, part_len),\
	    encrypted_part_len, OUT(part_len)) \
	FWD(C_SignEncryptUpdate, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len, unsigned char *encrypted_part, unsigned long *encrypted_part_len),\
	    (session, part, part_len, encrypted_part, encrypted_part_len),\
	    part_len, OUT(encrypted_part_len)) \
	FWD(C_DecryptVerifyUpdate, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *encrypted_part, unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len),\
	    (session, encrypted_part, encrypted_part_len, part, part_len),\
	    encrypted_part_len, OUT(part_len)) \
	FWD(C_GenerateKey, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_ATTRIBUTE *templ, unsigned long count, CK_OBJECT_HANDLE *key),\
	    (session, mechanism, templ, count, key),\
	    count, 0) \
	FWD(C_GenerateKeyPair, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_ATTRIBUTE *public_key_template, unsigned long public_key_attribute_count, CK_ATTRIBUTE *private_key_template, unsigned long private_key_attribute_count, CK_OBJECT_HANDLE *public_key, CK_OBJECT_HANDLE *private_key),\
	    (session, mechanism, public_key_template, public_key_attribute_count, private_key_template, private_key_attribute_count, public_key, private_key),\
	    public_key_attribute_count, 0) \
	FWD(C_WrapKey, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, unsigned char *wrapped_key, unsigned long *wrapped_key_len),\
	    (session, mechanism, wrapping_key, key, wrapped_key, wrapped_key_len),\
	    0, OUT(wrapped_key_len)) \
	FWD(C_UnwrapKey, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE unwrapping_key, unsigned char *wrapped_key, unsigned long wrapped_key_len, CK_ATTRIBUTE *templ, unsigned long attribute_count, CK_OBJECT_HANDLE *key),\
	    (session, mechanism, unwrapping_key, wrapped_key, wrapped_key_len, templ, attribute_count, key),\
	    wrapped_key_len, 0) \
	FWD(C_DeriveKey, SESSION(session),\
	    (CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE base_key, CK_ATTRIBUTE *templ, unsigned long attribute_count, CK_OBJECT_HANDLE *key),\
	    (session, mechanism, base_key, templ, attribute_count, key),\
	    attribute_count, 0) \
	FWD(C_SeedRandom, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *seed, unsigned long seed_len),\
	    (session, seed, seed_len),\
	    seed_len, 0) \
	FWD(C_GenerateRandom, SESSION(session),\
	    (CK_SESSION_HANDLE session, unsigned char *random_data, unsigned long random_len),\
	    (session, random_data, random_len),\
	    random_len, 0) \
	FWD(C_GetFunctionStatus, SESSION(session),\
	    (CK_SESSION_HANDLE session),\
	    (session),\
	    0, 0) \
	FWD(C_CancelFunction, SESSION(session),\
	    (CK_SESSION_HANDLE session),\
	    (session),\
	    0, 0) \
	OWN(C_WaitForSlotEvent)

#define SHIM_ENUM_OWN_(name) SHIM_F_##name,
#define SHIM_ENUM_FWD_(name, ...) SHIM_F_##name,
enum shim_fn {
	SHIM_FUNCS(SHIM_ENUM_OWN_, SHIM_ENUM_FWD_)
	SHIM_NFUNCS
};

#define SHIM_NAME_OWN_(name) #name,
#define SHIM_NAME_FWD_(name, ...) #name,
#define SHIM_FN_NAMES { SHIM_FUNCS(SHIM_NAME_OWN_, SHIM_NAME_FWD_) }

#endif
