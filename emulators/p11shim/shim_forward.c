/*
 * Plain forwarding of the functions without special semantics (generated
 * from pkcs11.h, then kept by hand): every one goes through the same begin/end
 * pair, so faults, latency, presence and the trace apply to all of them.
 */
#include "emulators/p11shim/shim.h"

static CK_RV w_C_GetInfo(CK_INFO *info)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_GetInfo, SHIM_NO_SLOT,
			    CK_INVALID_HANDLE, &rv))
		return rv;
	rv = shim_real->C_GetInfo(info);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_GetMechanismList(CK_SLOT_ID slot_id,
				  CK_MECHANISM_TYPE *mechanism_list,
				  unsigned long *count)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_GetMechanismList, slot_id,
			    CK_INVALID_HANDLE, &rv))
		return rv;
	rv = shim_real->C_GetMechanismList(slot_id, mechanism_list, count);
	return shim_call_end(&c, rv, 0, (count ? *count : 0));
}

static CK_RV w_C_GetMechanismInfo(CK_SLOT_ID slot_id, CK_MECHANISM_TYPE type,
				  CK_MECHANISM_INFO *info)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_GetMechanismInfo, slot_id,
			    CK_INVALID_HANDLE, &rv))
		return rv;
	rv = shim_real->C_GetMechanismInfo(slot_id, type, info);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_GetSessionInfo(CK_SESSION_HANDLE session,
				CK_SESSION_INFO *info)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_GetSessionInfo, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_GetSessionInfo(session, info);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_GetOperationState(CK_SESSION_HANDLE session,
				   unsigned char *operation_state,
				   unsigned long *operation_state_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_GetOperationState, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_GetOperationState(session, operation_state,
			operation_state_len);
	return shim_call_end(&c, rv, 0, (operation_state_len ? *operation_state_len : 0));
}

static CK_RV w_C_SetOperationState(CK_SESSION_HANDLE session,
				   unsigned char *operation_state,
				   unsigned long operation_state_len,
				   CK_OBJECT_HANDLE encryption_key,
				   CK_OBJECT_HANDLE authentiation_key)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_SetOperationState, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_SetOperationState(session, operation_state,
			operation_state_len, encryption_key, authentiation_key);
	return shim_call_end(&c, rv, operation_state_len, 0);
}

static CK_RV w_C_Logout(CK_SESSION_HANDLE session)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_Logout, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_Logout(session);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_CreateObject(CK_SESSION_HANDLE session, CK_ATTRIBUTE *templ,
			      unsigned long count, CK_OBJECT_HANDLE *object)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_CreateObject, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_CreateObject(session, templ, count, object);
	return shim_call_end(&c, rv, count, 0);
}

static CK_RV w_C_CopyObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
			    CK_ATTRIBUTE *templ, unsigned long count,
			    CK_OBJECT_HANDLE *new_object)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_CopyObject, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_CopyObject(session, object, templ, count, new_object);
	return shim_call_end(&c, rv, count, 0);
}

static CK_RV w_C_DestroyObject(CK_SESSION_HANDLE session,
			       CK_OBJECT_HANDLE object)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_DestroyObject, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_DestroyObject(session, object);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_GetObjectSize(CK_SESSION_HANDLE session,
			       CK_OBJECT_HANDLE object, unsigned long *size)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_GetObjectSize, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_GetObjectSize(session, object, size);
	return shim_call_end(&c, rv, 0, (size ? *size : 0));
}

static CK_RV w_C_GetAttributeValue(CK_SESSION_HANDLE session,
				   CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ,
				   unsigned long count)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_GetAttributeValue, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_GetAttributeValue(session, object, templ, count);
	return shim_call_end(&c, rv, count, 0);
}

static CK_RV w_C_SetAttributeValue(CK_SESSION_HANDLE session,
				   CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ,
				   unsigned long count)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_SetAttributeValue, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_SetAttributeValue(session, object, templ, count);
	return shim_call_end(&c, rv, count, 0);
}

static CK_RV w_C_FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE *templ,
				 unsigned long count)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_FindObjectsInit, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_FindObjectsInit(session, templ, count);
	return shim_call_end(&c, rv, count, 0);
}

static CK_RV w_C_FindObjects(CK_SESSION_HANDLE session,
			     CK_OBJECT_HANDLE *object,
			     unsigned long max_object_count,
			     unsigned long *object_count)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_FindObjects, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_FindObjects(session, object,
			max_object_count, object_count);
	return shim_call_end(&c, rv, max_object_count, (object_count ? *object_count : 0));
}

static CK_RV w_C_FindObjectsFinal(CK_SESSION_HANDLE session)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_FindObjectsFinal, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_FindObjectsFinal(session);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_EncryptInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
			     CK_OBJECT_HANDLE key)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_EncryptInit, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_EncryptInit(session, mechanism, key);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_Encrypt(CK_SESSION_HANDLE session, unsigned char *data,
			 unsigned long data_len, unsigned char *encrypted_data,
			 unsigned long *encrypted_data_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_Encrypt, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_Encrypt(session, data,
			data_len, encrypted_data, encrypted_data_len);
	return shim_call_end(&c, rv, data_len, (encrypted_data_len ? *encrypted_data_len : 0));
}

static CK_RV w_C_EncryptUpdate(CK_SESSION_HANDLE session, unsigned char *part,
			       unsigned long part_len,
			       unsigned char *encrypted_part,
			       unsigned long *encrypted_part_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_EncryptUpdate, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_EncryptUpdate(session, part,
			part_len, encrypted_part, encrypted_part_len);
	return shim_call_end(&c, rv, part_len, (encrypted_part_len ? *encrypted_part_len : 0));
}

static CK_RV w_C_EncryptFinal(CK_SESSION_HANDLE session,
			      unsigned char *last_encrypted_part,
			      unsigned long *last_encrypted_part_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_EncryptFinal, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_EncryptFinal(session, last_encrypted_part,
			last_encrypted_part_len);
	return shim_call_end(&c, rv, 0, (last_encrypted_part_len ? *last_encrypted_part_len : 0));
}

static CK_RV w_C_DecryptInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
			     CK_OBJECT_HANDLE key)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_DecryptInit, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_DecryptInit(session, mechanism, key);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_Decrypt(CK_SESSION_HANDLE session,
			 unsigned char *encrypted_data,
			 unsigned long encrypted_data_len, unsigned char *data,
			 unsigned long *data_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_Decrypt, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_Decrypt(session, encrypted_data,
			encrypted_data_len, data, data_len);
	return shim_call_end(&c, rv, encrypted_data_len, (data_len ? *data_len : 0));
}

static CK_RV w_C_DecryptUpdate(CK_SESSION_HANDLE session,
			       unsigned char *encrypted_part,
			       unsigned long encrypted_part_len,
			       unsigned char *part, unsigned long *part_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_DecryptUpdate, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_DecryptUpdate(session, encrypted_part,
			encrypted_part_len, part, part_len);
	return shim_call_end(&c, rv, encrypted_part_len, (part_len ? *part_len : 0));
}

static CK_RV w_C_DecryptFinal(CK_SESSION_HANDLE session,
			      unsigned char *last_part,
			      unsigned long *last_part_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_DecryptFinal, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_DecryptFinal(session, last_part, last_part_len);
	return shim_call_end(&c, rv, 0, (last_part_len ? *last_part_len : 0));
}

static CK_RV w_C_DigestInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_DigestInit, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_DigestInit(session, mechanism);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_Digest(CK_SESSION_HANDLE session, unsigned char *data,
			unsigned long data_len, unsigned char *digest,
			unsigned long *digest_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_Digest, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_Digest(session, data, data_len, digest, digest_len);
	return shim_call_end(&c, rv, data_len, (digest_len ? *digest_len : 0));
}

static CK_RV w_C_DigestUpdate(CK_SESSION_HANDLE session, unsigned char *part,
			      unsigned long part_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_DigestUpdate, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_DigestUpdate(session, part, part_len);
	return shim_call_end(&c, rv, part_len, 0);
}

static CK_RV w_C_DigestKey(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_DigestKey, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_DigestKey(session, key);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_DigestFinal(CK_SESSION_HANDLE session, unsigned char *digest,
			     unsigned long *digest_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_DigestFinal, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_DigestFinal(session, digest, digest_len);
	return shim_call_end(&c, rv, 0, (digest_len ? *digest_len : 0));
}

static CK_RV w_C_SignInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
			  CK_OBJECT_HANDLE key)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_SignInit, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_SignInit(session, mechanism, key);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_Sign(CK_SESSION_HANDLE session, unsigned char *data,
		      unsigned long data_len, unsigned char *signature,
		      unsigned long *signature_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_Sign, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_Sign(session, data,
			data_len, signature, signature_len);
	return shim_call_end(&c, rv, data_len, (signature_len ? *signature_len : 0));
}

static CK_RV w_C_SignUpdate(CK_SESSION_HANDLE session, unsigned char *part,
			    unsigned long part_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_SignUpdate, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_SignUpdate(session, part, part_len);
	return shim_call_end(&c, rv, part_len, 0);
}

static CK_RV w_C_SignFinal(CK_SESSION_HANDLE session, unsigned char *signature,
			   unsigned long *signature_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_SignFinal, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_SignFinal(session, signature, signature_len);
	return shim_call_end(&c, rv, 0, (signature_len ? *signature_len : 0));
}

static CK_RV w_C_SignRecoverInit(CK_SESSION_HANDLE session,
				 CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_SignRecoverInit, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_SignRecoverInit(session, mechanism, key);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_SignRecover(CK_SESSION_HANDLE session, unsigned char *data,
			     unsigned long data_len, unsigned char *signature,
			     unsigned long *signature_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_SignRecover, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_SignRecover(session, data,
			data_len, signature, signature_len);
	return shim_call_end(&c, rv, data_len, (signature_len ? *signature_len : 0));
}

static CK_RV w_C_VerifyInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
			    CK_OBJECT_HANDLE key)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_VerifyInit, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_VerifyInit(session, mechanism, key);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_Verify(CK_SESSION_HANDLE session, unsigned char *data,
			unsigned long data_len, unsigned char *signature,
			unsigned long signature_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_Verify, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_Verify(session, data,
			data_len, signature, signature_len);
	return shim_call_end(&c, rv, data_len, 0);
}

static CK_RV w_C_VerifyUpdate(CK_SESSION_HANDLE session, unsigned char *part,
			      unsigned long part_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_VerifyUpdate, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_VerifyUpdate(session, part, part_len);
	return shim_call_end(&c, rv, part_len, 0);
}

static CK_RV w_C_VerifyFinal(CK_SESSION_HANDLE session,
			     unsigned char *signature,
			     unsigned long signature_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_VerifyFinal, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_VerifyFinal(session, signature, signature_len);
	return shim_call_end(&c, rv, signature_len, 0);
}

static CK_RV w_C_VerifyRecoverInit(CK_SESSION_HANDLE session,
				   CK_MECHANISM *mechanism,
				   CK_OBJECT_HANDLE key)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_VerifyRecoverInit, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_VerifyRecoverInit(session, mechanism, key);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_VerifyRecover(CK_SESSION_HANDLE session,
			       unsigned char *signature,
			       unsigned long signature_len, unsigned char *data,
			       unsigned long *data_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_VerifyRecover, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_VerifyRecover(session, signature,
			signature_len, data, data_len);
	return shim_call_end(&c, rv, signature_len, (data_len ? *data_len : 0));
}

static CK_RV w_C_DigestEncryptUpdate(CK_SESSION_HANDLE session,
				     unsigned char *part,
				     unsigned long part_len,
				     unsigned char *encrypted_part,
				     unsigned long *encrypted_part_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_DigestEncryptUpdate, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_DigestEncryptUpdate(session, part,
			part_len, encrypted_part, encrypted_part_len);
	return shim_call_end(&c, rv, part_len, (encrypted_part_len ? *encrypted_part_len : 0));
}

static CK_RV w_C_DecryptDigestUpdate(CK_SESSION_HANDLE session,
				     unsigned char *encrypted_part,
				     unsigned long encrypted_part_len,
				     unsigned char *part,
				     unsigned long *part_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_DecryptDigestUpdate, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_DecryptDigestUpdate(session, encrypted_part,
			encrypted_part_len, part, part_len);
	return shim_call_end(&c, rv, encrypted_part_len, (part_len ? *part_len : 0));
}

static CK_RV w_C_SignEncryptUpdate(CK_SESSION_HANDLE session,
				   unsigned char *part, unsigned long part_len,
				   unsigned char *encrypted_part,
				   unsigned long *encrypted_part_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_SignEncryptUpdate, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_SignEncryptUpdate(session, part,
			part_len, encrypted_part, encrypted_part_len);
	return shim_call_end(&c, rv, part_len, (encrypted_part_len ? *encrypted_part_len : 0));
}

static CK_RV w_C_DecryptVerifyUpdate(CK_SESSION_HANDLE session,
				     unsigned char *encrypted_part,
				     unsigned long encrypted_part_len,
				     unsigned char *part,
				     unsigned long *part_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_DecryptVerifyUpdate, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_DecryptVerifyUpdate(session, encrypted_part,
			encrypted_part_len, part, part_len);
	return shim_call_end(&c, rv, encrypted_part_len, (part_len ? *part_len : 0));
}

static CK_RV w_C_GenerateKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
			     CK_ATTRIBUTE *templ, unsigned long count,
			     CK_OBJECT_HANDLE *key)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_GenerateKey, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_GenerateKey(session, mechanism, templ, count, key);
	return shim_call_end(&c, rv, count, 0);
}

static CK_RV w_C_GenerateKeyPair(CK_SESSION_HANDLE session,
				 CK_MECHANISM *mechanism,
				 CK_ATTRIBUTE *public_key_template,
				 unsigned long public_key_attribute_count,
				 CK_ATTRIBUTE *private_key_template,
				 unsigned long private_key_attribute_count,
				 CK_OBJECT_HANDLE *public_key,
				 CK_OBJECT_HANDLE *private_key)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_GenerateKeyPair, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_GenerateKeyPair(session, mechanism,
			public_key_template, public_key_attribute_count, private_key_template, private_key_attribute_count, public_key, private_key);
	return shim_call_end(&c, rv, public_key_attribute_count, 0);
}

static CK_RV w_C_WrapKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
			 CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key,
			 unsigned char *wrapped_key,
			 unsigned long *wrapped_key_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_WrapKey, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_WrapKey(session, mechanism,
			wrapping_key, key, wrapped_key, wrapped_key_len);
	return shim_call_end(&c, rv, 0, (wrapped_key_len ? *wrapped_key_len : 0));
}

static CK_RV w_C_UnwrapKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
			   CK_OBJECT_HANDLE unwrapping_key,
			   unsigned char *wrapped_key,
			   unsigned long wrapped_key_len, CK_ATTRIBUTE *templ,
			   unsigned long attribute_count, CK_OBJECT_HANDLE *key)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_UnwrapKey, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_UnwrapKey(session, mechanism,
			unwrapping_key, wrapped_key, wrapped_key_len, templ, attribute_count, key);
	return shim_call_end(&c, rv, wrapped_key_len, 0);
}

static CK_RV w_C_DeriveKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
			   CK_OBJECT_HANDLE base_key, CK_ATTRIBUTE *templ,
			   unsigned long attribute_count, CK_OBJECT_HANDLE *key)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_DeriveKey, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_DeriveKey(session, mechanism,
			base_key, templ, attribute_count, key);
	return shim_call_end(&c, rv, attribute_count, 0);
}

static CK_RV w_C_SeedRandom(CK_SESSION_HANDLE session, unsigned char *seed,
			    unsigned long seed_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_SeedRandom, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_SeedRandom(session, seed, seed_len);
	return shim_call_end(&c, rv, seed_len, 0);
}

static CK_RV w_C_GenerateRandom(CK_SESSION_HANDLE session,
				unsigned char *random_data,
				unsigned long random_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_GenerateRandom, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_GenerateRandom(session, random_data, random_len);
	return shim_call_end(&c, rv, random_len, 0);
}

static CK_RV w_C_GetFunctionStatus(CK_SESSION_HANDLE session)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_GetFunctionStatus, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_GetFunctionStatus(session);
	return shim_call_end(&c, rv, 0, 0);
}

static CK_RV w_C_CancelFunction(CK_SESSION_HANDLE session)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_CancelFunction, SHIM_NO_SLOT,
			    session, &rv))
		return rv;
	rv = shim_real->C_CancelFunction(session);
	return shim_call_end(&c, rv, 0, 0);
}

CK_FUNCTION_LIST shim_function_list = {
	.version = { 2, 40 },
	.C_Initialize = shim_C_Initialize,
	.C_Finalize = shim_C_Finalize,
	.C_GetInfo = w_C_GetInfo,
	.C_GetFunctionList = shim_C_GetFunctionList,
	.C_GetSlotList = shim_C_GetSlotList,
	.C_GetSlotInfo = shim_C_GetSlotInfo,
	.C_GetTokenInfo = shim_C_GetTokenInfo,
	.C_GetMechanismList = w_C_GetMechanismList,
	.C_GetMechanismInfo = w_C_GetMechanismInfo,
	.C_InitToken = shim_C_InitToken,
	.C_InitPIN = shim_C_InitPIN,
	.C_SetPIN = shim_C_SetPIN,
	.C_OpenSession = shim_C_OpenSession,
	.C_CloseSession = shim_C_CloseSession,
	.C_CloseAllSessions = shim_C_CloseAllSessions,
	.C_GetSessionInfo = w_C_GetSessionInfo,
	.C_GetOperationState = w_C_GetOperationState,
	.C_SetOperationState = w_C_SetOperationState,
	.C_Login = shim_C_Login,
	.C_Logout = w_C_Logout,
	.C_CreateObject = w_C_CreateObject,
	.C_CopyObject = w_C_CopyObject,
	.C_DestroyObject = w_C_DestroyObject,
	.C_GetObjectSize = w_C_GetObjectSize,
	.C_GetAttributeValue = w_C_GetAttributeValue,
	.C_SetAttributeValue = w_C_SetAttributeValue,
	.C_FindObjectsInit = w_C_FindObjectsInit,
	.C_FindObjects = w_C_FindObjects,
	.C_FindObjectsFinal = w_C_FindObjectsFinal,
	.C_EncryptInit = w_C_EncryptInit,
	.C_Encrypt = w_C_Encrypt,
	.C_EncryptUpdate = w_C_EncryptUpdate,
	.C_EncryptFinal = w_C_EncryptFinal,
	.C_DecryptInit = w_C_DecryptInit,
	.C_Decrypt = w_C_Decrypt,
	.C_DecryptUpdate = w_C_DecryptUpdate,
	.C_DecryptFinal = w_C_DecryptFinal,
	.C_DigestInit = w_C_DigestInit,
	.C_Digest = w_C_Digest,
	.C_DigestUpdate = w_C_DigestUpdate,
	.C_DigestKey = w_C_DigestKey,
	.C_DigestFinal = w_C_DigestFinal,
	.C_SignInit = w_C_SignInit,
	.C_Sign = w_C_Sign,
	.C_SignUpdate = w_C_SignUpdate,
	.C_SignFinal = w_C_SignFinal,
	.C_SignRecoverInit = w_C_SignRecoverInit,
	.C_SignRecover = w_C_SignRecover,
	.C_VerifyInit = w_C_VerifyInit,
	.C_Verify = w_C_Verify,
	.C_VerifyUpdate = w_C_VerifyUpdate,
	.C_VerifyFinal = w_C_VerifyFinal,
	.C_VerifyRecoverInit = w_C_VerifyRecoverInit,
	.C_VerifyRecover = w_C_VerifyRecover,
	.C_DigestEncryptUpdate = w_C_DigestEncryptUpdate,
	.C_DecryptDigestUpdate = w_C_DecryptDigestUpdate,
	.C_SignEncryptUpdate = w_C_SignEncryptUpdate,
	.C_DecryptVerifyUpdate = w_C_DecryptVerifyUpdate,
	.C_GenerateKey = w_C_GenerateKey,
	.C_GenerateKeyPair = w_C_GenerateKeyPair,
	.C_WrapKey = w_C_WrapKey,
	.C_UnwrapKey = w_C_UnwrapKey,
	.C_DeriveKey = w_C_DeriveKey,
	.C_SeedRandom = w_C_SeedRandom,
	.C_GenerateRandom = w_C_GenerateRandom,
	.C_GetFunctionStatus = w_C_GetFunctionStatus,
	.C_CancelFunction = w_C_CancelFunction,
	.C_WaitForSlotEvent = shim_C_WaitForSlotEvent,
};
