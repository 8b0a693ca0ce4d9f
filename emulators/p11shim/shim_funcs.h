/* Generated from p11-kit's pkcs11.h: the 68 functions of the v2.40 list, in its order. */
#ifndef TR_P11SHIM_FUNCS_H
#define TR_P11SHIM_FUNCS_H

enum shim_fn {
	SHIM_F_C_Initialize,
	SHIM_F_C_Finalize,
	SHIM_F_C_GetInfo,
	SHIM_F_C_GetFunctionList,
	SHIM_F_C_GetSlotList,
	SHIM_F_C_GetSlotInfo,
	SHIM_F_C_GetTokenInfo,
	SHIM_F_C_GetMechanismList,
	SHIM_F_C_GetMechanismInfo,
	SHIM_F_C_InitToken,
	SHIM_F_C_InitPIN,
	SHIM_F_C_SetPIN,
	SHIM_F_C_OpenSession,
	SHIM_F_C_CloseSession,
	SHIM_F_C_CloseAllSessions,
	SHIM_F_C_GetSessionInfo,
	SHIM_F_C_GetOperationState,
	SHIM_F_C_SetOperationState,
	SHIM_F_C_Login,
	SHIM_F_C_Logout,
	SHIM_F_C_CreateObject,
	SHIM_F_C_CopyObject,
	SHIM_F_C_DestroyObject,
	SHIM_F_C_GetObjectSize,
	SHIM_F_C_GetAttributeValue,
	SHIM_F_C_SetAttributeValue,
	SHIM_F_C_FindObjectsInit,
	SHIM_F_C_FindObjects,
	SHIM_F_C_FindObjectsFinal,
	SHIM_F_C_EncryptInit,
	SHIM_F_C_Encrypt,
	SHIM_F_C_EncryptUpdate,
	SHIM_F_C_EncryptFinal,
	SHIM_F_C_DecryptInit,
	SHIM_F_C_Decrypt,
	SHIM_F_C_DecryptUpdate,
	SHIM_F_C_DecryptFinal,
	SHIM_F_C_DigestInit,
	SHIM_F_C_Digest,
	SHIM_F_C_DigestUpdate,
	SHIM_F_C_DigestKey,
	SHIM_F_C_DigestFinal,
	SHIM_F_C_SignInit,
	SHIM_F_C_Sign,
	SHIM_F_C_SignUpdate,
	SHIM_F_C_SignFinal,
	SHIM_F_C_SignRecoverInit,
	SHIM_F_C_SignRecover,
	SHIM_F_C_VerifyInit,
	SHIM_F_C_Verify,
	SHIM_F_C_VerifyUpdate,
	SHIM_F_C_VerifyFinal,
	SHIM_F_C_VerifyRecoverInit,
	SHIM_F_C_VerifyRecover,
	SHIM_F_C_DigestEncryptUpdate,
	SHIM_F_C_DecryptDigestUpdate,
	SHIM_F_C_SignEncryptUpdate,
	SHIM_F_C_DecryptVerifyUpdate,
	SHIM_F_C_GenerateKey,
	SHIM_F_C_GenerateKeyPair,
	SHIM_F_C_WrapKey,
	SHIM_F_C_UnwrapKey,
	SHIM_F_C_DeriveKey,
	SHIM_F_C_SeedRandom,
	SHIM_F_C_GenerateRandom,
	SHIM_F_C_GetFunctionStatus,
	SHIM_F_C_CancelFunction,
	SHIM_F_C_WaitForSlotEvent,
	SHIM_NFUNCS
};

#define SHIM_FN_NAMES { \
	"C_Initialize", \
	"C_Finalize", \
	"C_GetInfo", \
	"C_GetFunctionList", \
	"C_GetSlotList", \
	"C_GetSlotInfo", \
	"C_GetTokenInfo", \
	"C_GetMechanismList", \
	"C_GetMechanismInfo", \
	"C_InitToken", \
	"C_InitPIN", \
	"C_SetPIN", \
	"C_OpenSession", \
	"C_CloseSession", \
	"C_CloseAllSessions", \
	"C_GetSessionInfo", \
	"C_GetOperationState", \
	"C_SetOperationState", \
	"C_Login", \
	"C_Logout", \
	"C_CreateObject", \
	"C_CopyObject", \
	"C_DestroyObject", \
	"C_GetObjectSize", \
	"C_GetAttributeValue", \
	"C_SetAttributeValue", \
	"C_FindObjectsInit", \
	"C_FindObjects", \
	"C_FindObjectsFinal", \
	"C_EncryptInit", \
	"C_Encrypt", \
	"C_EncryptUpdate", \
	"C_EncryptFinal", \
	"C_DecryptInit", \
	"C_Decrypt", \
	"C_DecryptUpdate", \
	"C_DecryptFinal", \
	"C_DigestInit", \
	"C_Digest", \
	"C_DigestUpdate", \
	"C_DigestKey", \
	"C_DigestFinal", \
	"C_SignInit", \
	"C_Sign", \
	"C_SignUpdate", \
	"C_SignFinal", \
	"C_SignRecoverInit", \
	"C_SignRecover", \
	"C_VerifyInit", \
	"C_Verify", \
	"C_VerifyUpdate", \
	"C_VerifyFinal", \
	"C_VerifyRecoverInit", \
	"C_VerifyRecover", \
	"C_DigestEncryptUpdate", \
	"C_DecryptDigestUpdate", \
	"C_SignEncryptUpdate", \
	"C_DecryptVerifyUpdate", \
	"C_GenerateKey", \
	"C_GenerateKeyPair", \
	"C_WrapKey", \
	"C_UnwrapKey", \
	"C_DeriveKey", \
	"C_SeedRandom", \
	"C_GenerateRandom", \
	"C_GetFunctionStatus", \
	"C_CancelFunction", \
	"C_WaitForSlotEvent", \
}

#endif
