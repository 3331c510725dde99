/* The .dl grammar (Bison, pure and reentrant, with locations). It builds the syntax tree of
 * frontend/ast.h and recovers from a syntax error at the end of the statement, so one run
 * reports several. Precedence, lowest first: || && comparisons + - (* / // % @) unary ** and
 * the postfix forms (calls, indexing, fields, `as`). */
%define api.pure full
%define api.prefix {fe_yy}
%define parse.error detailed
%locations
%param {yyscan_t scanner}
%parse-param {struct fe_pctx *pc}

%code top {
#include "frontend/parse.h"

#include <string.h>
}

%code requires {
#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif
struct fe_pctx;
#include "frontend/ast.h"
}

%code provides {
#define YYSTYPE FE_YYSTYPE
#define YYLTYPE FE_YYLTYPE
int  fe_yylex(FE_YYSTYPE *lval, FE_YYLTYPE *lloc, yyscan_t scanner);
void fe_yyerror(FE_YYLTYPE *lloc, yyscan_t scanner, struct fe_pctx *pc, const char *msg);
const char *fe_token_name(int token);
}

%code {
#define A (pc->arena)
static dl_loc L(struct fe_pctx *pc, FE_YYLTYPE l) { return (dl_loc){pc->file, l.first_line, l.first_column}; }
static fe_ast *node(struct fe_pctx *pc, fe_kind k, FE_YYLTYPE l) { return fe_ast_new(pc->arena, k, L(pc, l)); }
static fe_ast *binary(struct fe_pctx *pc, fe_op op, fe_ast *a, fe_ast *b, FE_YYLTYPE l)
{
    fe_ast *n = node(pc, FE_BINARY, l);
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}
static fe_ast *unary(struct fe_pctx *pc, fe_op op, fe_ast *a, FE_YYLTYPE l)
{
    fe_ast *n = node(pc, FE_UNARY, l);
    n->op = op;
    n->a = a;
    return n;
}
}

%union {
    int64_t     i;
    double      f;
    const char *str;
    fe_ast     *node;
    fe_list     list;
}

%token <str> IDENT "identifier" STRING "string"
%token <i> INT "integer"
%token <f> FLOAT "number"
%token IMPORT "'import'" CONST "'const'" FN "'fn'" MODEL "'model'" PARAM "'param'"
%token BUFFER "'buffer'" TRAIN "'train'" RETURN "'return'" IF "'if'" ELSE "'else'"
%token FOR "'for'" IN "'in'" AS "'as'" TRAINING "'training'" CHECKPOINT "'checkpoint'"
%token TRUE "'true'" FALSE "'false'"
%token OROR "'||'" ANDAND "'&&'" EQ "'=='" NE "'!='" LE "'<='" GE "'>='" FLOORDIV "'//'"
%token POW "'**'" DEFINE "':='" ARROW "'->'" ELLIPSIS "'...'" DOTDOT "'..'"
%token NEWLINE "end of line"

%type <node> decl import const fn model train param member block stmt else_opt expr primary
%type <node> mblock melse
%type <node> postfix arg index_item type dim type_or_kind setting for_iter slice_bound
%type <list> decls params param_list members stmts args arg_list exprs expr_list
%type <list> index_items dims ret_types types settings names

%left OROR
%left ANDAND
%nonassoc EQ NE '<' LE '>' GE
%left '+' '-'
%left '*' '/' FLOORDIV '%' '@'
%precedence UNARY
%right POW

%%

file: decls                         { pc->root = fe_ast_new(A, FE_FILE, (dl_loc){pc->file, 1, 1}); pc->root->items = $1; }
    ;

decls: %empty                       { $$ = (fe_list){0}; }
     | decls decl                   { $$ = $1; if ($2) fe_list_push(A, &$$, $2); }
     | decls sep                    { $$ = $1; }
     | decls error sep              { $$ = $1; yyerrok; }
     ;

sep: NEWLINE | ';' ;

decl: import | const | fn | model | train ;

import: IMPORT STRING sep           { $$ = node(pc, FE_IMPORT, @1); $$->name = $2; }
      ;

const: CONST IDENT '=' expr sep     { $$ = node(pc, FE_CONST, @2); $$->name = $2; $$->a = $4; }
     ;

fn: FN IDENT '(' params ')' ret_types block
                                    { $$ = node(pc, FE_FN, @2); $$->name = $2; $$->items = $4; $$->list2 = $6; $$->a = $7; }
  ;

ret_types: %empty                   { $$ = (fe_list){0}; }
         | ARROW type               { $$ = (fe_list){0}; fe_list_push(A, &$$, $2); }
         | ARROW '(' types ')'      { $$ = $3; }
         ;

types: type                         { $$ = (fe_list){0}; fe_list_push(A, &$$, $1); }
     | types ',' type               { $$ = $1; fe_list_push(A, &$$, $3); }
     ;

params: %empty                      { $$ = (fe_list){0}; }
      | param_list                  { $$ = $1; }
      | param_list ','              { $$ = $1; }
      ;

param_list: param                   { $$ = (fe_list){0}; fe_list_push(A, &$$, $1); }
          | param_list ',' param    { $$ = $1; fe_list_push(A, &$$, $3); }
          ;

param: IDENT ':' type_or_kind       { $$ = node(pc, FE_PARAMDEF, @1); $$->name = $1; $$->a = $3; }
     | IDENT ':' type_or_kind '=' expr
                                    { $$ = node(pc, FE_PARAMDEF, @1); $$->name = $1; $$->a = $3; $$->b = $5; }
     | IDENT '=' expr               { $$ = node(pc, FE_PARAMDEF, @1); $$->name = $1; $$->b = $3; }
     ;

/* `int`, `float`, ... (hyperparameter kinds) or a tensor type: both are TYPE nodes. */
type_or_kind: type ;

type: IDENT                         { $$ = node(pc, FE_TYPE, @1); $$->name = $1; }
    | IDENT '[' dims ']'            { $$ = node(pc, FE_TYPE, @1); $$->name = $1; $$->items = $3; }
    ;

dims: dim                           { $$ = (fe_list){0}; fe_list_push(A, &$$, $1); }
    | dims ',' dim                  { $$ = $1; fe_list_push(A, &$$, $3); }
    ;

dim: expr
   | ELLIPSIS                       { $$ = node(pc, FE_ELLIPSIS, @1); }
   ;

model: MODEL IDENT '(' params ')' '{' members '}'
                                    { $$ = node(pc, FE_MODELDEF, @2); $$->name = $2; $$->items = $4; $$->list2 = $7; }
     ;

members: %empty                     { $$ = (fe_list){0}; }
       | members member             { $$ = $1; if ($2) fe_list_push(A, &$$, $2); }
       | members sep                { $$ = $1; }
       | members error sep          { $$ = $1; yyerrok; }
       ;

member: PARAM IDENT ':' type '=' expr sep
                                    { $$ = node(pc, FE_PARAM, @2); $$->name = $2; $$->a = $4; $$->b = $6; }
      | BUFFER IDENT ':' type '=' expr sep
                                    { $$ = node(pc, FE_BUFFER, @2); $$->name = $2; $$->a = $4; $$->b = $6; }
      | IDENT '=' expr sep          { $$ = node(pc, FE_MEMBER, @1); $$->name = $1; $$->a = $3; }
      | fn
      | IF expr mblock melse        { $$ = node(pc, FE_IF, @1); $$->a = $2; $$->b = $3; $$->c = $4; }
      ;

/* Members chosen at compile time: if bias { param bias: f32[out] = zeros() } */
mblock: '{' members '}'             { $$ = node(pc, FE_BLOCK, @1); $$->items = $2; }
      ;

melse: %empty                       { $$ = NULL; }
     | ELSE mblock                  { $$ = $2; }
     | ELSE IF expr mblock melse    { $$ = node(pc, FE_IF, @2); $$->a = $3; $$->b = $4; $$->c = $5; }
     ;

train: TRAIN expr '{' settings '}'  { $$ = node(pc, FE_TRAIN, @1); $$->a = $2; $$->items = $4; }
     ;

settings: %empty                    { $$ = (fe_list){0}; }
        | settings setting          { $$ = $1; fe_list_push(A, &$$, $2); }
        | settings sep              { $$ = $1; }
        | settings error sep        { $$ = $1; yyerrok; }
        ;

setting: IDENT '=' expr sep         { $$ = node(pc, FE_ASSIGN, @1); $$->name = $1; $$->a = $3; }
       | CHECKPOINT '=' expr sep    { $$ = node(pc, FE_ASSIGN, @1); $$->name = "checkpoint"; $$->a = $3; }
       ;

block: '{' stmts '}'                { $$ = node(pc, FE_BLOCK, @1); $$->items = $2; }
     ;

stmts: %empty                       { $$ = (fe_list){0}; }
     | stmts stmt                   { $$ = $1; if ($2) fe_list_push(A, &$$, $2); }
     | stmts sep                    { $$ = $1; }
     | stmts error sep              { $$ = $1; yyerrok; }
     ;

stmt: names '=' expr sep            { $$ = node(pc, FE_ASSIGN, @1); $$->items = $1; $$->a = $3; }
    | IDENT DEFINE expr sep         { $$ = node(pc, FE_UPDATE, @1); $$->name = $1; $$->a = $3; }
    | RETURN exprs sep              { $$ = node(pc, FE_RETURN, @1); $$->items = $2; }
    | IF expr block else_opt        { $$ = node(pc, FE_IF, @1); $$->a = $2; $$->b = $3; $$->c = $4; }
    | FOR IDENT IN for_iter block   { $$ = node(pc, FE_FOR, @1); $$->name = $2; $$->a = $4; $$->b = $5; }
    | CHECKPOINT block              { $$ = node(pc, FE_CHECKPOINT, @1); $$->a = $2; }
    | postfix sep                   { $$ = node(pc, FE_EXPR, @1); $$->a = $1; }
    ;

names: IDENT                        { fe_ast *n = node(pc, FE_NAME, @1); n->name = $1; $$ = (fe_list){0}; fe_list_push(A, &$$, n); }
     | names ',' IDENT              { fe_ast *n = node(pc, FE_NAME, @3); n->name = $3; $$ = $1; fe_list_push(A, &$$, n); }
     ;

/* As in Go, `else` goes on the line of the `}` before it. */
else_opt: %empty                    { $$ = NULL; }
        | ELSE block                { $$ = $2; }
        | ELSE IF expr block else_opt
                                    { $$ = node(pc, FE_IF, @2); $$->a = $3; $$->b = $4; $$->c = $5; }
        ;

for_iter: expr DOTDOT expr          { $$ = node(pc, FE_RANGE, @2); $$->a = $1; $$->b = $3; }
        | expr
        ;

exprs: %empty                       { $$ = (fe_list){0}; }
     | expr_list                    { $$ = $1; }
     ;

expr_list: expr                     { $$ = (fe_list){0}; fe_list_push(A, &$$, $1); }
         | expr_list ',' expr       { $$ = $1; fe_list_push(A, &$$, $3); }
         ;

expr: postfix
    | '-' expr %prec UNARY          { $$ = unary(pc, FE_OP_NEG, $2, @1); }
    | '!' expr %prec UNARY          { $$ = unary(pc, FE_OP_NOT, $2, @1); }
    | expr POW expr                 { $$ = binary(pc, FE_OP_POW, $1, $3, @2); }
    | expr '*' expr                 { $$ = binary(pc, FE_OP_MUL, $1, $3, @2); }
    | expr '/' expr                 { $$ = binary(pc, FE_OP_DIV, $1, $3, @2); }
    | expr FLOORDIV expr            { $$ = binary(pc, FE_OP_FLOORDIV, $1, $3, @2); }
    | expr '%' expr                 { $$ = binary(pc, FE_OP_MOD, $1, $3, @2); }
    | expr '@' expr                 { $$ = binary(pc, FE_OP_MATMUL, $1, $3, @2); }
    | expr '+' expr                 { $$ = binary(pc, FE_OP_ADD, $1, $3, @2); }
    | expr '-' expr                 { $$ = binary(pc, FE_OP_SUB, $1, $3, @2); }
    | expr EQ expr                  { $$ = binary(pc, FE_OP_EQ, $1, $3, @2); }
    | expr NE expr                  { $$ = binary(pc, FE_OP_NE, $1, $3, @2); }
    | expr '<' expr                 { $$ = binary(pc, FE_OP_LT, $1, $3, @2); }
    | expr LE expr                  { $$ = binary(pc, FE_OP_LE, $1, $3, @2); }
    | expr '>' expr                 { $$ = binary(pc, FE_OP_GT, $1, $3, @2); }
    | expr GE expr                  { $$ = binary(pc, FE_OP_GE, $1, $3, @2); }
    | expr ANDAND expr              { $$ = binary(pc, FE_OP_AND, $1, $3, @2); }
    | expr OROR expr                { $$ = binary(pc, FE_OP_OR, $1, $3, @2); }
    ;

postfix: primary
       | postfix '(' args ')'       { $$ = node(pc, FE_CALL, @2); $$->a = $1; $$->items = $3; }
       | postfix '[' index_items ']'
                                    { $$ = node(pc, FE_INDEX, @2); $$->a = $1; $$->items = $3; }
       | postfix '.' IDENT          { $$ = node(pc, FE_FIELD, @3); $$->a = $1; $$->name = $3; }
       | postfix AS IDENT           { $$ = node(pc, FE_CAST, @2); $$->a = $1; $$->name = $3; }
       ;

primary: INT                        { $$ = node(pc, FE_INT, @1); $$->i = $1; }
       | FLOAT                      { $$ = node(pc, FE_FLOAT, @1); $$->f = $1; }
       | STRING                     { $$ = node(pc, FE_STR, @1); $$->name = $1; }
       | TRUE                       { $$ = node(pc, FE_BOOL, @1); $$->i = 1; }
       | FALSE                      { $$ = node(pc, FE_BOOL, @1); $$->i = 0; }
       | IDENT                      { $$ = node(pc, FE_NAME, @1); $$->name = $1; }
       | MODEL                      { $$ = node(pc, FE_MODEL, @1); }
       | TRAINING                   { $$ = node(pc, FE_TRAINING, @1); }
       | '(' expr ')'               { $$ = $2; }
       | '[' ']'                    { $$ = node(pc, FE_LIST, @1); }
       | '[' expr_list opt_comma ']'
                                    { $$ = node(pc, FE_LIST, @1); $$->items = $2; }
       | '[' expr ';' expr ']'      { $$ = node(pc, FE_REPEAT, @1); $$->a = $2; $$->b = $4; }
       ;

opt_comma: %empty | ',' ;

args: %empty                        { $$ = (fe_list){0}; }
    | arg_list opt_comma            { $$ = $1; }
    ;

arg_list: arg                       { $$ = (fe_list){0}; fe_list_push(A, &$$, $1); }
        | arg_list ',' arg          { $$ = $1; fe_list_push(A, &$$, $3); }
        ;

arg: expr                           { $$ = node(pc, FE_ARG, @1); $$->a = $1; }
   | IDENT '=' expr                 { $$ = node(pc, FE_ARG, @1); $$->name = $1; $$->a = $3; }
   | TRAINING '=' expr              { $$ = node(pc, FE_ARG, @1); $$->name = "training"; $$->a = $3; }
   ;

index_items: index_item             { $$ = (fe_list){0}; fe_list_push(A, &$$, $1); }
           | index_items ',' index_item
                                    { $$ = $1; fe_list_push(A, &$$, $3); }
           ;

index_item: expr
          | ELLIPSIS                { $$ = node(pc, FE_ELLIPSIS, @1); }
          | slice_bound ':' slice_bound
                                    { $$ = node(pc, FE_SLICE, @2); $$->a = $1; $$->b = $3; }
          | slice_bound ':' slice_bound ':' slice_bound
                                    { $$ = node(pc, FE_SLICE, @2); $$->a = $1; $$->b = $3; $$->c = $5; }
          ;

slice_bound: %empty                 { $$ = NULL; }
           | expr
           ;

%%

void fe_yyerror(FE_YYLTYPE *lloc, yyscan_t scanner, struct fe_pctx *pc, const char *msg)
{
    (void)scanner;
    sup_diag_error(pc->diag, L(pc, *lloc), "%s", msg);
    pc->errors++;
}

const char *fe_token_name(int token)
{
    return yysymbol_name(YYTRANSLATE(token));
}
