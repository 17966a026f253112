/*
 * zoo.h - internal: a small builder the zoo's model files share. Each helper appends nodes
 * to the graph, creates the weights it needs (Kaiming-normal from the builder's generator)
 * and returns the value index of its output. Names follow the PyTorch convention
 * (layer1.0.conv1.weight) so that exported models read familiar.
 */
#ifndef IL_ZOO_H
#define IL_ZOO_H

#include "distill.h"

typedef struct zb {
    il_graph *g;
    uint64_t rng;
    int k;   /* classes */
} zb;

/* A float32 initializer of the given shape: normal(0, std) or constant fill when std == 0. */
int zb_param(zb *b, const char *name, int rank, const int64_t *dims, double std, float fill);
int zb_scalar(zb *b, const char *name, float v);
int zb_ints(zb *b, const char *name, int n, const int64_t *v);
/* A node with n_in inputs and one fresh output named after the node; returns the output. */
int zb_node(zb *b, const char *op, const char *name, int n_in, const int *in);
/* Conv (Kaiming normal, fan-in, gain sqrt 2) with optional bias. */
int zb_conv(zb *b, const char *name, int x, int cin, int cout, int k, int stride, int pad, int group, int bias);
int zb_bn(zb *b, const char *name, int x, int c, float gamma);
/* act: "relu", "relu6" (Clip 0..6), "hardswish", "none" */
int zb_act(zb *b, const char *name, int x, const char *act);
/* conv + bn + act, the CNNs' unit. */
int zb_cba(zb *b, const char *name, int x, int cin, int cout, int k, int stride, int group, const char *act);
int zb_pool(zb *b, const char *op, const char *name, int x, int k, int stride, int pad);
int zb_gap_flat(zb *b, const char *name, int x);
/* Gemm y = x W^T + b with W [out, in]; gain sqrt 2 before a ReLU, 1 for the classifier. */
int zb_gemm(zb *b, const char *name, int x, int in, int out, double gain);
/* The same with a chosen output name: the classifiers write "logits". */
int zb_linear(zb *b, const char *name, const char *out_name, int x, int in, int out, double gain);
int zb_add(zb *b, const char *name, int x, int y);

/* Model builders (zoo_cnn.c, zoo_vit.c): x is the input value, (c, h, w) its shape; each
 * returns the logits value, or -1 with the error set. */
int zoo_mlp(zb *b, int x, int c, int h, int w, int width);
int zoo_lenet5(zb *b, int x, int c, int h, int w, int width);
int zoo_vgg(zb *b, int x, int c, int h, int w, int width);
int zoo_resnet_cifar(zb *b, int x, int c, int h, int w, int width, int depth);
int zoo_resnet_imagenet(zb *b, int x, int c, int h, int w, int width, int depth);
int zoo_mobilenet_v2(zb *b, int x, int c, int h, int w, int width);
int zoo_vit(zb *b, int x, int c, int h, int w, int width);

#endif
