/*
 * onnx_tensor.h - internal: TensorProto <-> il_tensor, shared by the ONNX importer, the
 * exporter and the .pb tensor files, so all three read and write tensor data the same way.
 * Not part of the public API; only engine/onnx_*.c and engine/tensor_io.c include it.
 *
 * Ownership: il_onnx_tensor_from_proto returns a new tensor the caller frees.
 * il_onnx_tensor_to_proto fills a TensorProto that *borrows* the tensor's dims, data and the
 * name (no copies, so exporting large weights costs no extra memory): the tensor must stay
 * alive and unchanged until the proto has been packed, and the proto must not be freed with
 * protobuf_c_message_free_unpacked.
 */
#ifndef IL_ONNX_TENSOR_H
#define IL_ONNX_TENSOR_H

#include "engine.h"
#include "onnx.pb-c.h"

/* The ONNX name of a TensorProto.DataType value, including the ones we do not store
 * ("string", "complex64", "float8e4m3fn"...). */
const char *il_onnx_type_name(int32_t data_type);

/* Convert p to a tensor. Data may come from raw_data (little-endian), the typed fields, or an
 * external file (data_location EXTERNAL) resolved against base_dir, which must be given for
 * external data and the file's path must be relative and stay inside base_dir. `what` names
 * the tensor in error messages ("initializer 'W'", a file path). Errors: IL_ERR_UNSUPPORTED
 * for dtypes we cannot hold (string, complex...) and segmented tensors, IL_ERR_PARSE when the
 * data disagrees with dims, IL_ERR_IO when external data cannot be read. */
il_status il_onnx_tensor_from_proto(const Onnx__TensorProto *p, const char *base_dir, const char *what,
                                    il_tensor **out);

/* Fill p (already initialised with ONNX__TENSOR_PROTO__INIT or zeroed) from t: dims,
 * data_type and raw_data, borrowing as described above. name may be NULL. */
void il_onnx_tensor_to_proto(const il_tensor *t, const char *name, Onnx__TensorProto *p);

/* Small file helpers shared by the ONNX readers. il_onnx_read_file reads a whole file into a
 * malloc'd buffer (the caller frees; an empty file gives *len 0 and a valid pointer) and
 * reports IL_ERR_IO with strerror. il_onnx_dirname returns a malloc'd copy of the directory
 * part of path ("." when it has none). */
il_status il_onnx_read_file(const char *path, uint8_t **buf, size_t *len);
char *il_onnx_dirname(const char *path);
il_status il_onnx_write_file(const char *path, const void *buf, size_t len);

#endif
