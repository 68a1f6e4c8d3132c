// What the CPU op libraries (deform_conv_ops.cc, winograd_ops.cc) share: the TensorFlow names they use and the
// function-multiversioning attribute of their hot loops. Not included by the CUDA file (no TensorFlow headers).

#ifndef TFVR_OPS_CC_TF_OP_COMMON_H_
#define TFVR_OPS_CC_TF_OP_COMMON_H_

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/platform/threadpool.h"

namespace tfvr {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Status;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::errors::InvalidArgument;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

}  // namespace tfvr

// The hot loops run over channel slices of unknown length: let GCC emit AVX2 / AVX-512 versions next to the
// baseline one and pick at load time, so the library stays portable (no -march=native).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TFVR_VECTORIZE __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TFVR_VECTORIZE
#endif

#endif  // TFVR_OPS_CC_TF_OP_COMMON_H_
